//! Slack views (Block Kit surfaces other than messages): the App Home tab and the modals, and
//! reading a submitted modal back into the command it stands for. Pure: the same state gives
//! the same view, checked by snapshot tests against what the fake Slack receives.
//!
//! As on the release message (`blocks`), a button's value is the command text it stands for:
//! pressing it is typing it, decided by the ledger. Reject and Rollback carry the command
//! without its reason, as does a stale lock reminder's Take over; pressing them opens the reason
//! modal (`reason_modal`), whose submission is the command with the reason typed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use crate::domain::{Policy, QueueItem, ReleaseStatus, UserId, Waiting};
use crate::projections::live::LockView;
use crate::render::{Renderer, span};

/// The request modal's callback id, and the global shortcut's that opens it.
pub const REQUEST: &str = "request_release";
/// The reason modal's callback id.
pub const REASON: &str = "reason";

/// Which command a reason modal completes, and where its answer goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonFor {
    /// `reject PAY-1` or `dep rollback PAY-1`.
    pub command: String,
    /// The release message whose button was pressed; `None` from the App Home.
    pub channel: Option<String>,
    pub message_ts: Option<String>,
}

impl ReasonFor {
    /// The command a Reject or Rollback button stands for, without a reason (a message posted
    /// before the buttons opened a modal carries a standard reason after it, left out here).
    pub fn command_of(action_id: &str, value: &str) -> Option<String> {
        let words: Vec<&str> = value.split_whitespace().collect();
        match (action_id, words.as_slice()) {
            ("reject", ["reject", ticket, ..]) => Some(format!("reject {ticket}")),
            ("rollback", ["dep", "rollback", ticket, ..]) => Some(format!("dep rollback {ticket}")),
            ("takeover", ["dep", "takeover", ticket, ..]) => Some(format!("dep takeover {ticket}")),
            _ => None,
        }
    }
}

fn view(value: Value) -> SlackView {
    serde_json::from_value(value).expect("the views here are valid Block Kit")
}

fn button(action: &str, label: &str, value: String, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button", "action_id": action,
        "text": {"type": "plain_text", "text": label}, "value": value,
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

fn section(block_id: &str, text: String) -> Value {
    json!({"type": "section", "block_id": block_id, "text": {"type": "mrkdwn", "text": text}})
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text}})
}

/// The next steps the person may take on a request, as buttons (the ledger still decides).
fn next_steps(item: &QueueItem, user: &UserId, policy: &Policy) -> Vec<Value> {
    let t = &item.ticket;
    let mine = &item.requester == user;
    let mut row = Vec::new();
    match item.status {
        ReleaseStatus::Requested => {
            if policy.is_approver(user) && !(mine && policy.four_eyes) {
                row.push(button(
                    "accept",
                    "Accept",
                    format!("accept {t}"),
                    Some("primary"),
                ));
                row.push(button(
                    "reject",
                    "Reject",
                    format!("reject {t}"),
                    Some("danger"),
                ));
            }
        }
        ReleaseStatus::Accepted => {
            if mine && item.waiting_for.is_empty() {
                row.push(button(
                    "start",
                    "Start",
                    format!("dep start {t}"),
                    Some("primary"),
                ));
            }
        }
        ReleaseStatus::Deploying => {
            if mine {
                row.push(button(
                    "finish",
                    "Finish",
                    format!("dep finish {t}"),
                    Some("primary"),
                ));
                row.push(button(
                    "rollback",
                    "Rollback",
                    format!("dep rollback {t}"),
                    Some("danger"),
                ));
            }
        }
    }
    let waits_for_admin = item.waiting_for.contains(&Waiting::Admin)
        || (item.need_admin && item.admin.is_none() && item.status == ReleaseStatus::Requested);
    if waits_for_admin && policy.is_admin(user) {
        row.push(button("here", "I'm here", format!("here {t}"), None));
    }
    if mine && item.status != ReleaseStatus::Deploying {
        row.push(button("cancel", "Cancel", format!("cancel {t}"), None));
    }
    row
}

/// The App Home tab of `user`: their open requests and what they may do next, what waits for
/// them as approver or admin, the queue, the locks with their age, and the timeline's link.
pub fn home(
    r: &Renderer,
    user: &UserId,
    queue: &[QueueItem],
    locks: &[LockView],
    policy: &Policy,
    now: DateTime<Utc>,
    page: Option<&str>,
) -> SlackView {
    let mut blocks = vec![header("Releases")];
    if let Some(page) = page {
        blocks.push(section(
            "page",
            format!("<{page}|Open the timeline> · <{page}report|Delivery figures>"),
        ));
    }
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for item in queue {
        let steps = next_steps(item, user, policy);
        if &item.requester == user {
            mine.push((item, steps));
        } else if !steps.is_empty() {
            theirs.push((item, steps));
        }
    }
    blocks.push(header("Your requests"));
    if mine.is_empty() {
        blocks.push(section(
            "mine-none",
            "You have no open request. Ask for one with `/dobro`.".into(),
        ));
    }
    for (item, steps) in &mine {
        blocks.push(section(
            &format!("mine-{}", item.ticket),
            r.queue_item(item),
        ));
        if !steps.is_empty() {
            blocks.push(json!({"type": "actions", "block_id": format!("mine-next-{}", item.ticket), "elements": steps}));
        }
    }
    if !theirs.is_empty() {
        blocks.push(header("Waiting for you"));
        for (item, steps) in &theirs {
            blocks.push(section(
                &format!("yours-{}", item.ticket),
                r.queue_item(item),
            ));
            blocks.push(json!({"type": "actions", "block_id": format!("yours-next-{}", item.ticket), "elements": steps}));
        }
    }
    blocks.push(header("Queue"));
    blocks.push(section("queue", r.queue(queue)));
    blocks.push(header("Locks"));
    let held = if locks.is_empty() {
        "No lock is held.".to_string()
    } else {
        locks
            .iter()
            .map(|l| {
                let what = match &l.lock {
                    crate::domain::LockKey::Service(s) => format!("service {}", r.text(s)),
                    crate::domain::LockKey::Group(g) => format!("group {}", r.text(g)),
                };
                format!(
                    "• {what}: {} by {}, for {}",
                    r.ticket(&l.ticket),
                    r.person(&l.by),
                    span((now - l.since).num_seconds())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    blocks.push(section("locks", held));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": format!("As of {}", now.format("%Y-%m-%d %H:%M UTC"))}]}));
    view(json!({"type": "home", "blocks": blocks}))
}

/// The request modal (the shortcut, and `/dobro` alone): its submission is the `dobro`
/// command.
pub fn request_modal(services: &[String]) -> SlackView {
    let mut blocks = vec![
        json!({"type": "input", "block_id": "ticket", "label": {"type": "plain_text", "text": "Ticket"},
            "element": {"type": "plain_text_input", "action_id": "ticket",
                "placeholder": {"type": "plain_text", "text": "PAY-1"}}}),
        json!({"type": "input", "block_id": "wiki", "optional": true,
            "label": {"type": "plain_text", "text": "Release notes link"},
            "element": {"type": "plain_text_input", "action_id": "wiki",
                "placeholder": {"type": "plain_text", "text": "https://wiki.example.com/pay-1"}}}),
        json!({"type": "input", "block_id": "comment", "optional": true,
            "label": {"type": "plain_text", "text": "Comment"},
            "element": {"type": "plain_text_input", "action_id": "comment", "multiline": true}}),
    ];
    if !services.is_empty() {
        let options: Vec<Value> = services
            .iter()
            .map(|s| json!({"text": {"type": "plain_text", "text": s}, "value": s}))
            .collect();
        blocks.push(json!({"type": "input", "block_id": "services", "optional": true,
            "label": {"type": "plain_text", "text": "Services"},
            "hint": {"type": "plain_text", "text": "Leave empty for the services of the ticket's project."},
            "element": {"type": "multi_static_select", "action_id": "services",
                "placeholder": {"type": "plain_text", "text": "The project's services"},
                "options": options}}));
    }
    let admin =
        json!({"text": {"type": "plain_text", "text": "Needs an admin"}, "value": "need_admin"});
    blocks.push(
        json!({"type": "input", "block_id": "admin", "optional": true,
        "label": {"type": "plain_text", "text": "Admin"},
        "element": {"type": "checkboxes", "action_id": "admin", "options": [admin.clone()],
            "initial_options": [admin]}}),
    );
    view(json!({
        "type": "modal", "callback_id": REQUEST,
        "title": {"type": "plain_text", "text": "Request a release"},
        "submit": {"type": "plain_text", "text": "Request"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }))
}

/// The modal asking why, for Reject, Rollback and Take over.
pub fn reason_modal(reason_for: &ReasonFor) -> SlackView {
    let (title, label) = if reason_for.command.starts_with("reject") {
        ("Reject", "Why is it rejected?")
    } else if reason_for.command.starts_with("dep takeover") {
        ("Take over", "Why is it taken over?")
    } else {
        ("Roll back", "Why is it rolled back?")
    };
    view(json!({
        "type": "modal", "callback_id": REASON,
        "private_metadata": serde_json::to_string(reason_for).unwrap_or_default(),
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": title},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section("command", format!("`{} <reason>`", reason_for.command)),
            {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": label},
             "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true}},
        ],
    }))
}

/// A submitted modal's field values, by block id: text, or the selected options' values.
pub fn values(state: Option<&SlackViewState>) -> HashMap<String, Vec<String>> {
    let mut values = HashMap::new();
    for (block, actions) in state.map(|s| &s.values).into_iter().flatten() {
        let mut found = Vec::new();
        for value in actions.values() {
            if let Some(text) = value
                .value
                .as_ref()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
            {
                found.push(text.to_string());
            }
            for option in value.selected_options.iter().flatten() {
                found.push(option.value.clone());
            }
        }
        values.insert(block.0.clone(), found);
    }
    values
}

/// The `dobro` command a submitted request modal stands for.
pub fn request_text(values: &HashMap<String, Vec<String>>) -> String {
    let one = |block: &str| values.get(block).and_then(|v| v.first()).cloned();
    let ticket = one("ticket").unwrap_or_default();
    let mut text = format!("dobro #{}", ticket.trim().trim_start_matches('#'));
    if let Some(wiki) = one("wiki") {
        text.push(' ');
        text.push_str(&wiki);
    }
    if let Some(comment) = one("comment") {
        text.push(' ');
        text.push_str(&comment.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let needs_admin = values
        .get("admin")
        .is_some_and(|v| v.iter().any(|o| o == "need_admin"));
    if !needs_admin {
        text.push_str(" no_need_admin");
    }
    if let Some(services) = values.get("services").filter(|s| !s.is_empty()) {
        text.push_str(&format!(" services={}", services.join(",")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_and_rollback_buttons_stand_for_their_command_without_a_reason() {
        assert_eq!(
            ReasonFor::command_of("reject", "reject PAY-1"),
            Some("reject PAY-1".into())
        );
        assert_eq!(
            ReasonFor::command_of("rollback", "dep rollback PAY-1 rolled back with the button"),
            Some("dep rollback PAY-1".into())
        );
        assert_eq!(
            ReasonFor::command_of("takeover", "dep takeover PAY-1"),
            Some("dep takeover PAY-1".into())
        );
        assert_eq!(ReasonFor::command_of("accept", "accept PAY-1"), None);
    }

    #[test]
    fn a_request_modal_reads_back_as_the_dobro_command() {
        let values = |pairs: &[(&str, &[&str])]| -> HashMap<String, Vec<String>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        assert_eq!(
            request_text(&values(&[
                ("ticket", &["#PAY-1"]),
                ("wiki", &["https://wiki/1"]),
                ("comment", &["Fix\nrounding"]),
                ("admin", &["need_admin"]),
                ("services", &[]),
            ])),
            "dobro #PAY-1 https://wiki/1 Fix rounding"
        );
        assert_eq!(
            request_text(&values(&[
                ("ticket", &["API-7"]),
                ("admin", &[]),
                ("services", &["api", "billing"]),
            ])),
            "dobro #API-7 no_need_admin services=api,billing"
        );
    }

    #[test]
    fn the_views_are_block_kit_slack_morphism_reads() {
        let modal = request_modal(&["api".into(), "billing".into()]);
        let json = serde_json::to_value(&modal).unwrap();
        assert_eq!(json["type"], "modal");
        assert_eq!(json["callback_id"], REQUEST);
        let reason = reason_modal(&ReasonFor {
            command: "dep rollback PAY-1".into(),
            channel: Some("C1".into()),
            message_ts: Some("1.2".into()),
        });
        let json = serde_json::to_value(&reason).unwrap();
        let metadata: ReasonFor =
            serde_json::from_str(json["private_metadata"].as_str().unwrap()).unwrap();
        assert_eq!(metadata.command, "dep rollback PAY-1");
    }
}
