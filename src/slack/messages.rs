//! What the Slack front has shown of the ledger, recorded in its own stream of the same store,
//! `dobrobot-slack-<environment>`, so that every replica and every restart agrees on it: where
//! each release's message is (channel and ts), and up to which ledger revision the steps have
//! been shown.
//!
//! The ts is a Slack detail, not a fact of the release process, so it stays out of the ledger.
//! `ReleaseMessagePosted` also keeps what the message shows of the request (requester,
//! services, link, comment), so a step can redraw it after the release has left the state.
//!
//! Showing a step happens once across replicas through a claim: a replica appends
//! `StepClaimed` with the stream's expected revision (the store's optimistic check makes one
//! replica win), shows the step in Slack, then appends `StepShown`, the checkpoint. A claim
//! left without its `StepShown` for longer than its lease (the replica died, or lost Slack
//! mid-call) may be taken over by another replica, which shows the step again from the
//! ledger: a redraw of the message is the same message, so the only thing a takeover can
//! repeat is a reply whose call reached Slack just before its sender died.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::{ServiceName, TicketInTracker, TicketKey, UserId, WikiLink};
use crate::store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, StoreError};

use super::error::SlackError;

/// Namespace of the ids of `ReleaseMessagePosted` events.
const MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x6d0b_70b0_51ac_4c0e_9a11_7e1e_a5e0_0001);

/// The stream of the Slack front's own records for an environment.
pub fn stream_name(environment: &str) -> String {
    format!("dobrobot-slack-{environment}")
}

/// What a release's message shows of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub requester: UserId,
    pub services: Vec<ServiceName>,
    pub wiki: Option<WikiLink>,
    pub comment: String,
    pub need_admin: bool,
    /// What the tracker said of the ticket when it was requested (its summary and status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker: Option<TicketInTracker>,
}

/// A release's message in Slack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub ticket: TicketKey,
    /// The ledger revision of the step that posted it (the request, normally).
    pub request_revision: u64,
    pub channel: String,
    pub ts: String,
    pub card: Card,
}

/// A replica's claim to show the step at a ledger revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub revision: u64,
    pub replica: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum SlackRecord {
    /// Boxed: a card is large next to the other records.
    ReleaseMessagePosted(Box<Posted>),
    StepClaimed(Claim),
    /// Every ledger step up to `revision` is shown (`None`: none yet). The first one a
    /// replica records on a ledger that has history is where showing starts: history from
    /// before Slack was set up is not announced.
    StepShown {
        revision: Option<u64>,
    },
}

impl SlackRecord {
    fn type_name(&self) -> &'static str {
        match self {
            SlackRecord::ReleaseMessagePosted(_) => "ReleaseMessagePosted",
            SlackRecord::StepClaimed(_) => "StepClaimed",
            SlackRecord::StepShown { .. } => "StepShown",
        }
    }
}

/// Where showing stands, as the stream says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The stream's own last revision: a claim is appended expecting it.
    pub stream_revision: Option<u64>,
    /// `None` until a first checkpoint is recorded; then the last ledger revision shown.
    pub shown: Option<Option<u64>>,
    /// The latest claim not yet followed by its `StepShown`.
    pub claim: Option<Claim>,
}

#[derive(Default)]
struct Known {
    checkpoint: Checkpoint,
    /// The latest message of each ticket.
    by_ticket: HashMap<TicketKey, Posted>,
}

pub struct ReleaseMessages {
    store: Arc<dyn EventStore>,
    stream: String,
    known: Mutex<Known>,
}

impl ReleaseMessages {
    pub async fn open(store: Arc<dyn EventStore>, environment: &str) -> Result<Self, SlackError> {
        let messages = ReleaseMessages {
            store,
            stream: stream_name(environment),
            known: Mutex::new(Known::default()),
        };
        messages.catch_up(&mut *messages.known.lock().await).await?;
        Ok(messages)
    }

    /// The latest message of `ticket`, as any replica recorded it.
    pub async fn find(&self, ticket: &TicketKey) -> Result<Option<Posted>, SlackError> {
        let mut known = self.known.lock().await;
        self.catch_up(&mut known).await?;
        Ok(known.by_ticket.get(ticket).cloned())
    }

    /// Where showing stands now, with what other replicas recorded.
    pub async fn checkpoint(&self) -> Result<Checkpoint, SlackError> {
        let mut known = self.known.lock().await;
        self.catch_up(&mut known).await?;
        Ok(known.checkpoint.clone())
    }

    /// Records a posted message. When another replica recorded one for the same request first,
    /// that one is returned and `posted` is not recorded.
    pub async fn record(&self, posted: Posted) -> Result<Posted, SlackError> {
        let key = format!("{}:{}", posted.ticket, posted.request_revision);
        let id = Uuid::new_v5(&MESSAGE_NAMESPACE, key.as_bytes());
        let record = SlackRecord::ReleaseMessagePosted(Box::new(posted.clone()));
        let mut known = self.known.lock().await;
        let result = self
            .store
            .append(
                &self.stream,
                ExpectedRevision::Any,
                vec![event(id, &record)?],
            )
            .await?;
        self.catch_up(&mut known).await?;
        if result.written {
            return Ok(posted);
        }
        let first = self
            .store
            .read(
                &self.stream,
                Direction::Forwards,
                ReadFrom::Revision(result.first_revision),
                1,
            )
            .await?;
        match first.first().map(|e| decode(&e.data)).transpose()? {
            Some(SlackRecord::ReleaseMessagePosted(winner)) => Ok(*winner),
            _ => Ok(posted),
        }
    }

    /// Claims the step at `claim.revision`, if the stream is still where `seen` says; whether
    /// this claim won. Losing means another replica recorded something first: look again.
    pub async fn claim(&self, claim: Claim, seen: &Checkpoint) -> Result<bool, SlackError> {
        self.append_expecting(SlackRecord::StepClaimed(claim), seen)
            .await
    }

    /// Records that every step up to `revision` is shown.
    pub async fn shown(&self, revision: Option<u64>) -> Result<(), SlackError> {
        let record = SlackRecord::StepShown { revision };
        let mut known = self.known.lock().await;
        self.store
            .append(
                &self.stream,
                ExpectedRevision::Any,
                vec![event(Uuid::now_v7(), &record)?],
            )
            .await?;
        self.catch_up(&mut known).await
    }

    /// Records the first checkpoint, unless another replica has recorded one since `seen`.
    pub async fn start_at(
        &self,
        revision: Option<u64>,
        seen: &Checkpoint,
    ) -> Result<bool, SlackError> {
        self.append_expecting(SlackRecord::StepShown { revision }, seen)
            .await
    }

    async fn append_expecting(
        &self,
        record: SlackRecord,
        seen: &Checkpoint,
    ) -> Result<bool, SlackError> {
        let expected = match seen.stream_revision {
            None => ExpectedRevision::NoStream,
            Some(r) => ExpectedRevision::Exact(r),
        };
        let mut known = self.known.lock().await;
        let appended = self
            .store
            .append(
                &self.stream,
                expected,
                vec![event(Uuid::now_v7(), &record)?],
            )
            .await;
        self.catch_up(&mut known).await?;
        match appended {
            Ok(_) => Ok(true),
            Err(StoreError::WrongExpectedRevision { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn catch_up(&self, known: &mut Known) -> Result<(), SlackError> {
        let from = known.checkpoint.stream_revision.map_or(0, |r| r + 1);
        let mut pages = self.store.read_pages(&self.stream, from);
        while let Some(page) = pages.try_next().await? {
            for recorded in &page {
                let checkpoint = &mut known.checkpoint;
                match decode(&recorded.data)? {
                    SlackRecord::ReleaseMessagePosted(posted) => {
                        known.by_ticket.insert(posted.ticket.clone(), *posted);
                    }
                    SlackRecord::StepClaimed(claim) => checkpoint.claim = Some(claim),
                    SlackRecord::StepShown { revision } => {
                        let newer = match checkpoint.shown {
                            Some(Some(shown)) => revision.is_some_and(|r| r > shown),
                            _ => true,
                        };
                        if newer {
                            checkpoint.shown = Some(revision);
                        }
                        if checkpoint
                            .claim
                            .as_ref()
                            .is_some_and(|c| revision.is_some_and(|r| r >= c.revision))
                        {
                            checkpoint.claim = None;
                        }
                    }
                }
                known.checkpoint.stream_revision = Some(recorded.revision);
            }
        }
        Ok(())
    }
}

fn event(id: Uuid, record: &SlackRecord) -> Result<NewEvent, SlackError> {
    NewEvent::record(id, record.type_name(), record).map_err(|e| SlackError::Decode(e.to_string()))
}

fn decode(data: &[u8]) -> Result<SlackRecord, SlackError> {
    serde_json::from_slice(data).map_err(|e| SlackError::Decode(e.to_string()))
}
