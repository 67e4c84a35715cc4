//! What each Slack delivery asks of the front, the same for both transports (the HTTP
//! endpoints in `crate::http::slack` and Socket Mode in `socket`): what to answer Slack at
//! once (a submitted modal whose fields fail the ticket checks is answered with
//! `response_action: errors`, so the person fixes it in place), and the work to do after the
//! acknowledgement (`Work`), which `SlackFront::perform` does.

use std::collections::HashMap;

use slack_morphism::prelude::*;
use tracing::{debug, warn};

use super::front::SlackFront;
use super::inbound::{self, Inbound, ReplyTo};
use super::views::{self, REASON, REQUEST, ReasonFor};
use crate::domain::{CheckFailure, Command, Input, UserId, parse};

/// Something to do after Slack has its acknowledgement.
#[derive(Debug, Clone)]
pub enum Work {
    /// Run a command and answer it.
    Run(Inbound),
    /// Publish the person's App Home tab.
    Home(UserId),
    /// Open a modal for the interaction with this trigger id.
    Open { trigger_id: String, view: SlackView },
}

/// An Events API callback: a command typed to the bot, or the App Home opened.
pub fn push_event(callback: &SlackPushEventCallback) -> Vec<Work> {
    if let SlackEventCallbackBody::AppHomeOpened(opened) = &callback.event {
        let home = opened.tab.as_deref().is_none_or(|tab| tab == "home");
        return match UserId::parse(&opened.user.0) {
            Ok(user) if home => vec![Work::Home(user)],
            _ => Vec::new(),
        };
    }
    inbound::from_push_event(callback)
        .map(Work::Run)
        .into_iter()
        .collect()
}

/// `/dobro ...`; `/dobro` alone opens the request modal.
pub fn command(front: &SlackFront, event: &SlackCommandEvent) -> Vec<Work> {
    if event.text.as_deref().unwrap_or_default().trim().is_empty() {
        return vec![Work::Open {
            trigger_id: event.trigger_id.0.clone(),
            view: views::request_modal(&front.services()),
        }];
    }
    vec![Work::Run(inbound::from_slash_command(event))]
}

/// An interactivity payload: buttons, the shortcut, a submitted modal.
pub fn interaction(
    front: &SlackFront,
    event: &SlackInteractionEvent,
) -> (SlackInteractionResponse, Vec<Work>) {
    let empty = SlackInteractionResponse::Empty;
    match event {
        SlackInteractionEvent::BlockActions(actions) => (empty, block_actions(actions)),
        SlackInteractionEvent::Shortcut(shortcut) if shortcut.callback_id.0 == REQUEST => (
            empty,
            vec![Work::Open {
                trigger_id: shortcut.trigger_id.0.clone(),
                view: views::request_modal(&front.services()),
            }],
        ),
        SlackInteractionEvent::ViewSubmission(submission) => submitted(front, submission),
        _ => {
            debug!("Slack interaction ignored");
            (empty, Vec::new())
        }
    }
}

/// Buttons: each runs its command, but Reject, Rollback and Take over, which ask for the reason
/// first.
fn block_actions(event: &SlackInteractionBlockActionsEvent) -> Vec<Work> {
    let mut work = Vec::new();
    let message = match &event.container {
        SlackInteractionActionContainer::Message(m) => {
            Some((m.channel_id.clone(), m.message_ts.clone()))
        }
        SlackInteractionActionContainer::MessageAttachment(m) => {
            Some((m.channel_id.clone(), m.message_ts.clone()))
        }
        SlackInteractionActionContainer::View(_) => None,
    };
    let mut asks_why = false;
    for action in event.actions.iter().flatten() {
        let value = action.value.as_deref().unwrap_or_default();
        if let Some(command) = ReasonFor::command_of(&action.action_id.0, value) {
            asks_why = true;
            let (channel, message_ts) = match &message {
                Some((channel, ts)) => (
                    channel
                        .clone()
                        .or_else(|| event.channel.as_ref().map(|c| c.id.clone()))
                        .map(|c| c.0),
                    Some(ts.0.clone()),
                ),
                None => (None, None),
            };
            work.push(Work::Open {
                trigger_id: event.trigger_id.0.clone(),
                view: views::reason_modal(&ReasonFor {
                    command,
                    channel,
                    message_ts,
                }),
            });
        }
    }
    if asks_why {
        return work;
    }
    work.extend(
        inbound::from_block_actions(event)
            .into_iter()
            .map(Work::Run),
    );
    work
}

/// A submitted modal: the command it stands for, or the fields to fix.
fn submitted(
    front: &SlackFront,
    submission: &SlackInteractionViewSubmissionEvent,
) -> (SlackInteractionResponse, Vec<Work>) {
    let empty = SlackInteractionResponse::Empty;
    let Ok(user) = UserId::parse(&submission.user.id.0) else {
        return (empty, Vec::new());
    };
    let (callback, metadata) = match &submission.view.view {
        SlackView::Modal(modal) => (
            modal.callback_id.as_ref().map(|c| c.0.clone()),
            modal.private_metadata.clone(),
        ),
        SlackView::Home(_) => return (empty, Vec::new()),
    };
    let values = views::values(submission.view.state_params.state.as_ref());
    let delivery = format!("slack-view:{}", submission.view.state_params.id.0);
    let person = ReplyTo::Person { user: user.clone() };
    match callback.as_deref() {
        Some(REQUEST) => {
            let text = views::request_text(&values);
            let errors = request_errors(front, &text, values.contains_key("services"));
            if !errors.is_empty() {
                let response = SlackViewSubmissionResponse::Errors(
                    SlackViewSubmissionErrorsResponse::new(errors),
                );
                return (response.into(), Vec::new());
            }
            let run = Inbound {
                user,
                text,
                delivery,
                reply_to: person,
            };
            (empty, vec![Work::Run(run)])
        }
        Some(REASON) => {
            let Some(reason_for) = metadata
                .as_deref()
                .and_then(|m| serde_json::from_str::<ReasonFor>(m).ok())
            else {
                warn!("a reason modal without its command");
                return (empty, Vec::new());
            };
            let reason = values
                .get("reason")
                .and_then(|v| v.first())
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let reply_to = match (reason_for.channel, reason_for.message_ts) {
                (Some(channel), Some(message_ts)) => ReplyTo::Button {
                    channel,
                    message_ts,
                },
                _ => person,
            };
            let run = Inbound {
                user,
                text: format!("{} {reason}", reason_for.command),
                delivery,
                reply_to,
            };
            (empty, vec![Work::Run(run)])
        }
        _ => (empty, Vec::new()),
    }
}

/// What a request modal's fields fail, by block id: the command not understood (said on the
/// ticket), or the ticket checks. Whether the request may be made is the ledger's to decide
/// after; these are the checks of the request's own form.
fn request_errors(front: &SlackFront, text: &str, has_services: bool) -> HashMap<String, String> {
    let plain = crate::render::Renderer::plain(None);
    let mut errors = HashMap::new();
    match parse(text) {
        Err(error) => {
            errors.insert("ticket".to_string(), plain.parse_error(&error));
        }
        Ok(Input::Command(Command::Request(request))) => {
            for failure in front.bot.ledger.policy().form_checks(&request) {
                let field = match failure {
                    CheckFailure::WikiLinkMissing => "wiki",
                    CheckFailure::NoServices { .. } if has_services => "services",
                    _ => "ticket",
                };
                let line = plain.check_failure(&failure);
                errors
                    .entry(field.to_string())
                    .and_modify(|e: &mut String| {
                        e.push_str("; ");
                        e.push_str(&line);
                    })
                    .or_insert(line);
            }
        }
        Ok(_) => {
            errors.insert("ticket".to_string(), "not a release request".to_string());
        }
    }
    errors
}
