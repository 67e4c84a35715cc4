//! What the bot answers, as typed values: what was decided and why, or a query's rows. Each
//! front renders an answer in its own medium (`render`); none of them reads it back out of
//! prose.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    Event, HistoryFilter, ParseError, Policy, QueueItem, Refusal, ServiceName, State,
};
use crate::projections::{Deployment, HistoryEntry};

/// How many deployments a `who` answer names, and how many events a `history` answer shows.
pub const WHO_LIMIT: usize = 10;
pub const HISTORY_LIMIT: usize = 20;
/// How many deployments a `suspects` answer names.
pub const SUSPECTS_LIMIT: usize = 10;

#[derive(Debug, Clone)]
pub enum Answer {
    /// The command was recorded as these events, at `revision` (the first of them); `state` is
    /// the state right after, `policy` the rules it was decided by.
    Accepted {
        revision: u64,
        events: Vec<Event>,
        state: Arc<State>,
        policy: Arc<Policy>,
    },
    /// The command was refused, and the refusal recorded.
    Refused(Refusal),
    /// The same delivery was recorded before: nothing new.
    AlreadyRecorded,
    /// Not a command; nothing recorded.
    NotUnderstood(ParseError),
    /// Not recorded: the ledger failed (the store unavailable, ...).
    NotRecorded(String),
    Help,
    Queue(Vec<QueueItem>),
    /// Who deployed `service`, most recent first, at most `WHO_LIMIT`.
    Who {
        service: ServiceName,
        deployments: Vec<Deployment>,
    },
    /// The last `HISTORY_LIMIT` of the `total` matching events, oldest first.
    History {
        filter: HistoryFilter,
        total: usize,
        shown: Vec<HistoryEntry>,
    },
    /// What ran on `services` (any when empty) in the `window` before `at`, latest activity
    /// first, at most `SUSPECTS_LIMIT`.
    Suspects {
        at: DateTime<Utc>,
        window: Duration,
        services: Vec<ServiceName>,
        deployments: Vec<Deployment>,
    },
    /// A query that could not be answered: the read models failed.
    CannotRead(String),
}

/// How a message went, for exit codes and for where a front shows the answer (Slack shows
/// refusals to the person alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// Recorded, or a query answered.
    Done,
    /// Recorded as refused.
    Refused,
    /// Not understood; nothing recorded.
    Invalid,
    /// Not recorded because of a failure (the store unavailable, ...).
    Failed,
}

impl Answer {
    pub fn kind(&self) -> ReplyKind {
        match self {
            Answer::Accepted { .. }
            | Answer::AlreadyRecorded
            | Answer::Help
            | Answer::Queue(_)
            | Answer::Who { .. }
            | Answer::History { .. }
            | Answer::Suspects { .. } => ReplyKind::Done,
            Answer::Refused(_) => ReplyKind::Refused,
            Answer::NotUnderstood(_) => ReplyKind::Invalid,
            Answer::NotRecorded(_) | Answer::CannotRead(_) => ReplyKind::Failed,
        }
    }
}
