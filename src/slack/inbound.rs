//! What Slack delivered, reduced to what the bot needs: who, what they typed, a delivery id
//! that is the same on every redelivery, and where the answer goes.
//!
//! Both transports (the Events API over HTTP in `crate::http`, Socket Mode in `socket`) decode
//! Slack's payloads with slack-morphism's models and pass them through these functions, so a
//! command means the same thing whichever way it came. No decisions are made here: a button is
//! the command text it carries, and the ledger decides whether the presser may run it. Typed
//! text is decoded from Slack's markup here (`markup`), so the parser reads plain text.

use slack_morphism::prelude::*;

use super::markup;
use crate::domain::UserId;

/// One command from a person in Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub user: UserId,
    /// What they typed, as plain text: Slack's markup decoded (`markup`), the bot's mention
    /// in front of it dropped. A button's text is the command it carries.
    pub text: String,
    /// The same for every redelivery of one Slack event, action or command; the ledger derives
    /// its event ids from it, so a redelivery appends nothing.
    pub delivery: String,
    pub reply_to: ReplyTo,
}

/// Where the answer to an `Inbound` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// An `app_mention`: the reply goes into the mention's thread.
    Channel { channel: String, thread_ts: String },
    /// A `message.im`: the reply goes into the DM.
    DirectMessage { channel: String },
    /// `/dobro ...`: the reply is ephemeral (or through the `response_url`).
    SlashCommand {
        channel: String,
        response_url: Option<String>,
    },
    /// A button (`block_actions`) on a release message.
    Button { channel: String, message_ts: String },
    /// A button in the App Home, or a submitted modal: the answer goes to the person's DM
    /// with the app.
    Person { user: UserId },
}

impl ReplyTo {
    pub fn channel(&self) -> &str {
        match self {
            ReplyTo::Channel { channel, .. }
            | ReplyTo::DirectMessage { channel }
            | ReplyTo::SlashCommand { channel, .. }
            | ReplyTo::Button { channel, .. } => channel,
            ReplyTo::Person { user } => user.as_str(),
        }
    }
}

/// An `app_mention` or a `message.im` from a person; `None` for everything else (bot messages,
/// the bot's own messages, edits, deletions, joins, other event types).
///
/// The delivery id is Slack's `event_id`, the same on every redelivery. An event without one
/// (Slack documents it on every callback, but a proxy or a replay tool may drop it) gets the id
/// of the message itself, its channel and ts, which is just as stable: a shared empty id would
/// make every such event look like a redelivery of the first and drop it.
pub fn from_push_event(event: &SlackPushEventCallback) -> Option<Inbound> {
    let delivery = |channel: &str, ts: &str| {
        let id = event.event_id.0.trim();
        if id.is_empty() {
            format!("slack-message:{channel}:{ts}")
        } else {
            format!("slack-event:{id}")
        }
    };
    match &event.event {
        SlackEventCallbackBody::AppMention(mention) => {
            if mention.edited.is_some() {
                return None;
            }
            let thread_ts = mention
                .origin
                .thread_ts
                .as_ref()
                .unwrap_or(&mention.origin.ts);
            Some(Inbound {
                user: user_id(&mention.user)?,
                text: markup::decode(mention.content.text.as_deref().unwrap_or_default()),
                delivery: delivery(&mention.channel.0, &mention.origin.ts.0),
                reply_to: ReplyTo::Channel {
                    channel: mention.channel.0.clone(),
                    thread_ts: thread_ts.0.clone(),
                },
            })
        }
        SlackEventCallbackBody::Message(message) => {
            let from_person = message.subtype.is_none()
                && message.hidden != Some(true)
                && message.sender.bot_id.is_none()
                && message.sender.bot_profile.is_none();
            if !from_person {
                return None;
            }
            let channel = message.origin.channel.as_ref()?;
            let is_im = match &message.origin.channel_type {
                Some(kind) => kind.0 == "im",
                None => channel.0.starts_with('D'),
            };
            if !is_im {
                return None;
            }
            Some(Inbound {
                user: user_id(message.sender.user.as_ref()?)?,
                text: markup::decode(message.content.as_ref()?.text.as_ref()?),
                delivery: delivery(&channel.0, &message.origin.ts.0),
                reply_to: ReplyTo::DirectMessage {
                    channel: channel.0.clone(),
                },
            })
        }
        _ => None,
    }
}

/// One `Inbound` per pressed button on a message; a button's value is its command text.
pub fn from_block_actions(event: &SlackInteractionBlockActionsEvent) -> Vec<Inbound> {
    let Some(user) = event.user.as_ref().and_then(|u| user_id(&u.id)) else {
        return Vec::new();
    };
    let (container_channel, message_ts) = match &event.container {
        SlackInteractionActionContainer::Message(m) => (m.channel_id.clone(), m.message_ts.clone()),
        SlackInteractionActionContainer::MessageAttachment(m) => {
            (m.channel_id.clone(), m.message_ts.clone())
        }
        // A button in the App Home: the answer goes to the person.
        SlackInteractionActionContainer::View(_) => {
            return actions(event, &user, ReplyTo::Person { user: user.clone() });
        }
    };
    let Some(channel) = container_channel.or_else(|| event.channel.as_ref().map(|c| c.id.clone()))
    else {
        return Vec::new();
    };
    let reply_to = ReplyTo::Button {
        channel: channel.0.clone(),
        message_ts: message_ts.0.clone(),
    };
    actions(event, &user, reply_to)
}

/// The pressed buttons' commands, each answered at `reply_to`.
fn actions(
    event: &SlackInteractionBlockActionsEvent,
    user: &UserId,
    reply_to: ReplyTo,
) -> Vec<Inbound> {
    event
        .actions
        .iter()
        .flatten()
        .filter_map(|action| {
            let text = action.value.clone()?;
            let delivery = match &action.action_ts {
                Some(ts) => format!("slack-action:{}:{}", action.action_id.0, ts.0),
                None => format!("slack-action:{}:{}", action.action_id.0, event.trigger_id.0),
            };
            Some(Inbound {
                user: user.clone(),
                text,
                delivery,
                reply_to: reply_to.clone(),
            })
        })
        .collect()
}

/// `/dobro accept PAY-1` -> `accept PAY-1`. `/dobro #PAY-1 <link> comment` (the request
/// without its verb, as the command's name already says it) is read as `dobro #PAY-1 ...`.
pub fn from_slash_command(event: &SlackCommandEvent) -> Inbound {
    let typed = markup::decode(event.text.as_deref().unwrap_or_default());
    let text = if typed.trim_start().starts_with('#') {
        format!("dobro {}", typed.trim())
    } else {
        typed.trim().to_string()
    };
    // Slack user ids are `[A-Z0-9]+`; one that is not cannot be recorded under its own id, so
    // it becomes a user the ledger knows nothing about, who may run nothing.
    let user = user_id(&event.user_id)
        .unwrap_or_else(|| UserId::parse("unknown-slack-user").expect("a valid user id literal"));
    Inbound {
        user,
        text,
        delivery: format!("slack-command:{}", event.trigger_id.0),
        reply_to: ReplyTo::SlashCommand {
            channel: event.channel_id.0.clone(),
            response_url: Some(event.response_url.0.to_string()),
        },
    }
}

fn user_id(id: &SlackUserId) -> Option<UserId> {
    UserId::parse(&id.0).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn callback(event: Value) -> SlackPushEventCallback {
        serde_json::from_value(json!({
            "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": "Ev1", "event_time": 1_764_062_400, "event": event
        }))
        .unwrap()
    }

    #[test]
    fn a_mention_in_a_thread_is_answered_in_that_thread() {
        let inbound = from_push_event(&callback(json!({
            "type": "app_mention", "user": "U0BOB", "text": "<@U0BOT> queue",
            "ts": "2.0", "thread_ts": "1.0", "channel": "C1", "event_ts": "2.0"
        })))
        .unwrap();
        assert_eq!(inbound.delivery, "slack-event:Ev1");
        assert_eq!(
            inbound.text, "queue",
            "the bot's mention is Slack's addressing"
        );
        assert_eq!(
            inbound.reply_to,
            ReplyTo::Channel {
                channel: "C1".into(),
                thread_ts: "1.0".into()
            }
        );
    }

    #[test]
    fn an_event_without_an_id_is_named_by_its_message() {
        let mention = |event_id: &str, ts: &str| {
            let payload = json!({
                "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                "event_id": event_id, "event_time": 1_764_062_400,
                "event": {
                    "type": "app_mention", "user": "U0BOB", "text": "<@U0BOT> queue",
                    "ts": ts, "channel": "C1", "event_ts": ts
                }
            });
            serde_json::from_value::<SlackPushEventCallback>(payload)
                .ok()
                .and_then(|e| from_push_event(&e))
                .map(|i| i.delivery)
        };
        assert_eq!(mention("", "1.0").unwrap(), "slack-message:C1:1.0");
        assert_eq!(mention(" ", "2.0").unwrap(), "slack-message:C1:2.0");
        assert_eq!(mention("Ev9", "1.0").unwrap(), "slack-event:Ev9");
    }

    #[test]
    fn bots_edits_and_channel_messages_are_not_commands() {
        let dm = |extra: Value| {
            let mut event = json!({
                "type": "message", "channel": "D0BOB", "user": "U0BOB", "text": "queue",
                "ts": "1.0", "channel_type": "im"
            });
            for (k, v) in extra.as_object().unwrap() {
                event[k] = v.clone();
            }
            from_push_event(&callback(event))
        };
        assert!(dm(json!({})).is_some());
        assert!(dm(json!({ "bot_id": "B0DOBROBOT" })).is_none());
        assert!(dm(json!({ "subtype": "bot_message" })).is_none());
        assert!(dm(json!({ "subtype": "message_changed" })).is_none());
        assert!(dm(json!({ "channel_type": "channel", "channel": "C1" })).is_none());
        let edited_mention = from_push_event(&callback(json!({
            "type": "app_mention", "user": "U0BOB", "text": "<@U0BOT> queue", "ts": "1.0",
            "channel": "C1", "edited": { "user": "U0BOB", "ts": "2.0" }
        })));
        assert!(edited_mention.is_none());
    }

    #[test]
    fn a_slash_command_request_may_leave_out_its_verb() {
        let command = |text: &str| {
            serde_json::from_value::<SlackCommandEvent>(json!({
                "team_id": "T1", "channel_id": "C1", "user_id": "U0BOB", "command": "/dobro",
                "text": text, "response_url": "https://hooks.slack.com/commands/1",
                "trigger_id": "1.2.3"
            }))
            .unwrap()
        };
        let inbound = from_slash_command(&command("#PAY-1 https://wiki/x fix"));
        assert_eq!(inbound.text, "dobro #PAY-1 https://wiki/x fix");
        assert_eq!(inbound.delivery, "slack-command:1.2.3");
        assert_eq!(
            from_slash_command(&command(" accept PAY-1 ")).text,
            "accept PAY-1"
        );
    }
}
