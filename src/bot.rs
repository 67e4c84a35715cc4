//! The bot: one chat message in, one typed answer out. Slack, the CLI's `chat` and HTTP all
//! come through here, so a command means the same thing everywhere; each front renders the
//! answer in its own medium (`crate::render`).
//!
//! Commands go to the ledger (recorded, accepted or refused); queries read the follower's
//! models and record nothing. A query waits until the models include what this process last
//! wrote, so `chat` reads its own writes.
//!
//! With a tracker configured, a `dobro` looks its ticket up here, before the ledger decides:
//! the lookup is I/O and `decide` is pure, so the answer travels inside the request. Doing it
//! here, once, gives every front (Slack, `chat`, HTTP) the same check.

use std::sync::Arc;
use std::time::Duration;

use crate::answer::{Answer, HISTORY_LIMIT, SUSPECTS_LIMIT, WHO_LIMIT};
use crate::domain::{Command, Input, Query, parse, queue};
use crate::envelope::Actor;
use crate::follower::Followed;
use crate::ledger::{Decision, Ledger, Submission};
use crate::metrics::METRICS;
use crate::models::ModelsError;
use crate::read::DeploymentFilter;
use crate::tracker::Tracker;

/// How long a query waits for the follower to reach the writer's revision.
const QUERY_WAIT: Duration = Duration::from_secs(5);

pub struct Bot {
    pub ledger: Ledger,
    pub followed: Followed,
    /// `[tracker]`: asked about the ticket of each `dobro`.
    pub tracker: Option<Arc<dyn Tracker>>,
}

impl Bot {
    /// Handles one message from `actor`. `delivery` identifies a redelivering source's message.
    pub async fn handle(&self, actor: Actor, text: &str, delivery: Option<String>) -> Answer {
        let input = match parse(text) {
            Ok(input) => input,
            Err(error) => return Answer::NotUnderstood(error),
        };
        let mut command = match input {
            Input::Query(query) => return self.answer(query).await,
            Input::Command(command) => command,
        };
        if let (Command::Request(request), Some(tracker)) = (&mut command, &self.tracker) {
            let finding = tracker.lookup(&request.ticket).await;
            METRICS.tracker_lookup(finding.outcome());
            request.tracker = Some(finding);
        }
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
        let stored = self.followed.stored().clone();
        let answered = match query {
            Query::Help => return Answer::Help,
            Query::Queue => {
                return self
                    .followed
                    .read(|models| Answer::Queue(queue(&models.live.state, &policy)));
            }
            Query::Who { service } => {
                tokio::task::spawn_blocking(move || {
                    let filter = DeploymentFilter::default();
                    let deployments = stored
                        .read(|r| r.values(r.who(&service, &filter, None, None, WHO_LIMIT)?))?
                        .items;
                    Ok(Answer::Who {
                        deployments,
                        service,
                    })
                })
                .await
            }
            Query::History(filter) => {
                tokio::task::spawn_blocking(move || {
                    let (total, shown) = stored.read(|r| r.history_tail(&filter, HISTORY_LIMIT))?;
                    Ok(Answer::History {
                        filter,
                        total,
                        shown,
                    })
                })
                .await
            }
            Query::Suspects {
                at,
                window,
                services,
            } => {
                // The time as typed, read with this process's clock.
                let now = self.ledger.now();
                let at = match at.as_deref().map(|t| crate::read::parse_time(t, now)) {
                    None => now,
                    Some(Ok(at)) => at,
                    Some(Err(_)) => {
                        return Answer::NotUnderstood(crate::domain::ParseError::BadValue {
                            verb: "suspects",
                            error: crate::domain::types::ParseValueError::Time(
                                at.unwrap_or_default(),
                            ),
                        });
                    }
                };
                let window = window.unwrap_or(chrono::Duration::hours(2));
                tokio::task::spawn_blocking(move || {
                    let deployments = stored
                        .read(|r| r.suspects(at, window, &services, None, SUSPECTS_LIMIT))?
                        .items;
                    Ok(Answer::Suspects {
                        at,
                        window,
                        services,
                        deployments,
                    })
                })
                .await
            }
        };
        match answered {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => Answer::CannotRead(ModelsError::to_string(&error)),
            Err(error) => Answer::CannotRead(error.to_string()),
        }
    }
}
