//! The bot: one chat message in, one typed answer out. Slack, the CLI's `chat` and HTTP all
//! come through here, so a command means the same thing everywhere; each front renders the
//! answer in its own medium (`crate::render`).
//!
//! Commands go to the ledger (recorded, accepted or refused); queries read the follower's
//! models and record nothing. A query waits until the models include what this process last
//! wrote, so `chat` reads its own writes.

use std::time::Duration;

use crate::answer::{Answer, HISTORY_LIMIT, WHO_LIMIT};
use crate::domain::{Input, Query, parse, queue};
use crate::envelope::Actor;
use crate::follower::Followed;
use crate::ledger::{Decision, Ledger, Submission};
use crate::metrics::METRICS;

/// How long a query waits for the follower to reach the writer's revision.
const QUERY_WAIT: Duration = Duration::from_secs(5);

pub struct Bot {
    pub ledger: Ledger,
    pub followed: Followed,
}

impl Bot {
    /// Handles one message from `actor`. `delivery` identifies a redelivering source's message.
    pub async fn handle(&self, actor: Actor, text: &str, delivery: Option<String>) -> Answer {
        let input = match parse(text) {
            Ok(input) => input,
            Err(error) => return Answer::NotUnderstood(error),
        };
        let command = match input {
            Input::Query(query) => return self.answer(query).await,
            Input::Command(command) => command,
        };
        let verb = command.verb();
        let submission = Submission {
            command,
            actor,
            text: text.trim().to_string(),
            delivery,
            correlation_id: None,
        };
        let answer = match self.ledger.submit(submission).await {
            Ok(outcome) => match outcome.result {
                Decision::Accepted(events) => Answer::Accepted {
                    revision: outcome.revision,
                    events,
                    state: outcome.state,
                    policy: self.ledger.policy(),
                },
                Decision::Refused(refusal) => Answer::Refused(refusal),
                Decision::AlreadyRecorded => Answer::AlreadyRecorded,
            },
            Err(error) => Answer::NotRecorded(error.to_string()),
        };
        let outcome = match &answer {
            Answer::Accepted { .. } => "accepted",
            Answer::Refused(refusal) => {
                METRICS.refusal(refusal);
                "refused"
            }
            Answer::AlreadyRecorded => "already_recorded",
            _ => "not_recorded",
        };
        METRICS.command(verb, outcome);
        answer
    }

    async fn answer(&self, query: Query) -> Answer {
        if let Query::Help = query {
            return Answer::Help;
        }
        let written = self.ledger.snapshot().revision;
        if !self.followed.reached(written, QUERY_WAIT).await {
            return Answer::CannotRead(
                "the read models are behind the ledger; try again in a moment".to_string(),
            );
        }
        let policy = self.ledger.policy();
        self.followed.read(|models| match query {
            Query::Help => Answer::Help,
            Query::Queue => Answer::Queue(queue(&models.live.state, &policy)),
            Query::Who { service } => Answer::Who {
                deployments: models
                    .deployments
                    .who(&service, None)
                    .into_iter()
                    .take(WHO_LIMIT)
                    .cloned()
                    .collect(),
                service,
            },
            Query::History(filter) => {
                let matching: Vec<_> = models.history.matching(&filter).collect();
                let skipped = matching.len().saturating_sub(HISTORY_LIMIT);
                Answer::History {
                    total: matching.len(),
                    shown: matching[skipped..].iter().map(|e| (*e).clone()).collect(),
                }
            }
        })
    }
}
