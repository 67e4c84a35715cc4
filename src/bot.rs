//! The bot: one chat message in, one reply out. Slack, the CLI's `chat` and HTTP all come
//! through here, so a command means the same thing and gets the same words everywhere.
//!
//! Commands go to the ledger (recorded, accepted or refused); queries read projections and
//! record nothing.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::domain::{HistoryFilter, Input, Policy, Query, ServiceName, parse};
use crate::envelope::Actor;
use crate::ledger::{Decision, Ledger, LedgerError, Options, Outcome, Submission};
use crate::projections::{self, AsOf, Deployments, History, ProjectionError};
use crate::reply::Renderer;
use crate::store::{self, EventStore, StoreError};

/// How a message went, for exit codes and for Slack (public reply or ephemeral refusal).
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    pub text: String,
}

impl Reply {
    fn new(kind: ReplyKind, text: String) -> Self {
        Reply { kind, text }
    }
}

/// A reply, with the ledger's outcome when the message was a command it decided.
#[derive(Debug, Clone)]
pub struct Handled {
    pub reply: Reply,
    pub outcome: Option<Outcome>,
}

impl Handled {
    fn reply(reply: Reply) -> Self {
        Handled {
            reply,
            outcome: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub struct Bot {
    pub ledger: Ledger,
    pub store: Arc<dyn EventStore>,
    pub stream: String,
    /// The policy as configured (role entries may be Slack user groups); commands are decided
    /// by `ledger.policy()`, which the Slack front keeps expanded.
    pub policy: Arc<Policy>,
    pub renderer: Renderer,
}

impl Bot {
    /// Opens the configured store and loads the ledger.
    pub async fn open(config: &Config, options: Options) -> Result<Self, OpenError> {
        let policy = Arc::new(config.policy()?);
        let store = store::open(&config.store).await?;
        let stream = config.stream();
        let ledger = Ledger::open(store.clone(), stream.clone(), policy.clone(), options).await?;
        Ok(Bot {
            ledger,
            store,
            stream,
            policy,
            renderer: Renderer {
                tracker_url: config.tracker_url.clone(),
            },
        })
    }

    /// Handles one message from `actor`. `delivery` identifies a redelivering source's message.
    pub async fn handle(&self, actor: Actor, text: &str, delivery: Option<String>) -> Reply {
        self.handle_with_outcome(actor, text, delivery).await.reply
    }

    /// Like `handle`, with what the ledger made of a command, for fronts that show more than
    /// the reply (the Slack front updates the release's message).
    pub async fn handle_with_outcome(
        &self,
        actor: Actor,
        text: &str,
        delivery: Option<String>,
    ) -> Handled {
        let input = match parse(text) {
            Ok(input) => input,
            Err(error) => {
                let reply = Reply::new(ReplyKind::Invalid, self.renderer.parse_error(&error));
                return Handled::reply(reply);
            }
        };
        match input {
            Input::Query(query) => Handled::reply(self.answer(query).await),
            Input::Command(command) => {
                let submission = Submission {
                    command,
                    actor,
                    text: text.trim().to_string(),
                    delivery,
                    correlation_id: None,
                };
                match self.ledger.submit(submission).await {
                    Ok(outcome) => {
                        let reply = match &outcome.result {
                            Decision::Accepted(events) => Reply::new(
                                ReplyKind::Done,
                                self.renderer.accepted(
                                    events,
                                    &outcome.state,
                                    &self.ledger.policy(),
                                ),
                            ),
                            Decision::Refused(refusal) => {
                                Reply::new(ReplyKind::Refused, self.renderer.refusal(refusal))
                            }
                            Decision::AlreadyRecorded => {
                                Reply::new(ReplyKind::Done, self.renderer.already_recorded())
                            }
                        };
                        Handled {
                            reply,
                            outcome: Some(outcome),
                        }
                    }
                    Err(error) => Handled::reply(Reply::new(
                        ReplyKind::Failed,
                        format!("Your command was not recorded: {error}. Please try again."),
                    )),
                }
            }
        }
    }

    async fn answer(&self, query: Query) -> Reply {
        let result = match query {
            Query::Help => Ok(self.renderer.help()),
            Query::Queue => {
                let snapshot = self.ledger.snapshot();
                let items = crate::domain::queue(&snapshot.state, &self.ledger.policy());
                Ok(self.renderer.queue(&items))
            }
            Query::Who { service } => self.who(&service).await,
            Query::History(filter) => self.history(filter).await,
        };
        match result {
            Ok(text) => Reply::new(ReplyKind::Done, text),
            Err(error) => Reply::new(
                ReplyKind::Failed,
                format!("Cannot read the ledger: {error}"),
            ),
        }
    }

    async fn who(&self, service: &ServiceName) -> Result<String, ProjectionError> {
        let mut deployments = Deployments::default();
        projections::build(&self.store, &self.stream, AsOf::Latest, &mut deployments).await?;
        Ok(self
            .renderer
            .who(service.as_str(), &deployments.who(service, None)))
    }

    async fn history(&self, filter: HistoryFilter) -> Result<String, ProjectionError> {
        let mut history = History::new(filter);
        projections::build(&self.store, &self.stream, AsOf::Latest, &mut history).await?;
        Ok(self.renderer.history(&history.entries, 20))
    }
}
