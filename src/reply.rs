//! The answer to a recorded command as JSON: what the write API (`POST /api/v1/commands`)
//! answers and what its client, `dobrobot deploy`, reads, here and over HTTP alike. It carries
//! the bot's typed outcome (the refusal as a value, the events' types) beside the plain-text
//! reply, and the ticket's status once the command was decided, so that a client retrying a
//! request it lost the answer to learns where its release stands.

use serde::{Deserialize, Serialize};

use crate::answer::Answer;
use crate::bot::Bot;
use crate::domain::{Input, Refusal, ReleaseStatus, TicketKey, parse};
use crate::render::Renderer;

/// How a command went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Recorded as the events named.
    Accepted,
    /// Refused, and the refusal recorded.
    Refused,
    /// This idempotency key was recorded before: nothing new.
    AlreadyRecorded,
    /// Not a command: nothing recorded.
    NotUnderstood,
    /// Not recorded: the ledger failed.
    NotRecorded,
    /// A question, answered; nothing recorded.
    Answered,
}

/// The answer to a command.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandReply {
    pub outcome: Outcome,
    /// The bot's reply in plain text, as `chat` prints it.
    pub text: String,
    /// The revision of the first event recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The types of the events recorded.
    #[serde(default)]
    pub events: Vec<String>,
    /// Why the command was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub refusal: Option<Refusal>,
    /// The ticket the command is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketKey>,
    /// The ticket's status in the ledger once the command was decided; absent when it has no
    /// open request (never had one, or it ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReleaseStatus>,
}

impl CommandReply {
    /// The reply to `text`, answered `answer` by `bot`, in `renderer`'s words.
    pub fn of(answer: Answer, text: &str, bot: &Bot, renderer: &Renderer) -> CommandReply {
        let ticket = match parse(text) {
            Ok(Input::Command(command)) => command.ticket().cloned(),
            _ => None,
        };
        let status = ticket.as_ref().and_then(|ticket| {
            let snapshot = bot.ledger.snapshot();
            snapshot.state.release(ticket).map(|r| r.status())
        });
        let outcome = match &answer {
            Answer::Accepted { .. } => Outcome::Accepted,
            Answer::AlreadyRecorded => Outcome::AlreadyRecorded,
            Answer::Refused(_) => Outcome::Refused,
            Answer::NotUnderstood(_) => Outcome::NotUnderstood,
            Answer::NotRecorded(_) | Answer::CannotRead(_) => Outcome::NotRecorded,
            _ => Outcome::Answered,
        };
        CommandReply {
            outcome,
            text: renderer.answer(&answer),
            revision: match &answer {
                Answer::Accepted { revision, .. } => Some(*revision),
                _ => None,
            },
            events: match &answer {
                Answer::Accepted { events, .. } => {
                    events.iter().map(|e| e.type_name().to_string()).collect()
                }
                _ => Vec::new(),
            },
            refusal: match answer {
                Answer::Refused(refusal) => Some(refusal),
                _ => None,
            },
            ticket,
            status,
        }
    }
}
