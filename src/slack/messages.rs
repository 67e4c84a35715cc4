//! Where each release's message is in Slack (channel and ts), so that every step updates the
//! same message and replies in its thread, across restarts and across replicas.
//!
//! The ts is a Slack detail, not a fact of the release process, so it stays out of the ledger:
//! it is recorded in its own stream, `dobrobot-slack-<environment>`, of the same store, as
//! `ReleaseMessagePosted` events. The event id derives from the ticket and the revision of its
//! request, so two replicas recording a message for the same request keep one (the first), and
//! the other learns it. Each lookup first reads what other replicas appended since.
//!
//! The event also keeps what the message shows of the request (requester, services, link,
//! comment), so a step can redraw it even after the release has left the ledger's state.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::{ServiceName, TicketKey, UserId, WikiLink};
use crate::store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom};

use super::error::SlackError;

/// Namespace of the ids of `ReleaseMessagePosted` events.
const MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x6d0b_70b0_51ac_4c0e_9a11_7e1e_a5e0_0001);
const READ_PAGE: usize = 1000;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum SlackRecord {
    ReleaseMessagePosted(Posted),
}

impl SlackRecord {
    fn type_name(&self) -> &'static str {
        match self {
            SlackRecord::ReleaseMessagePosted(_) => "ReleaseMessagePosted",
        }
    }
}

#[derive(Default)]
struct Known {
    revision: Option<u64>,
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

    /// Records a posted message. When another replica recorded one for the same request first,
    /// that one is returned and `posted` is not recorded.
    pub async fn record(&self, posted: Posted) -> Result<Posted, SlackError> {
        let key = format!("{}:{}", posted.ticket, posted.request_revision);
        let record = SlackRecord::ReleaseMessagePosted(posted.clone());
        let data = serde_json::to_vec(&record).map_err(|e| SlackError::Decode(e.to_string()))?;
        let metadata = serde_json::json!({
            "recorded_at": Utc::now().to_rfc3339(),
            "app_version": env!("CARGO_PKG_VERSION"),
        });
        let event = NewEvent {
            id: Uuid::new_v5(&MESSAGE_NAMESPACE, key.as_bytes()),
            event_type: record.type_name().to_string(),
            data,
            metadata: metadata.to_string().into_bytes(),
        };
        let mut known = self.known.lock().await;
        let result = self
            .store
            .append(&self.stream, ExpectedRevision::Any, vec![event])
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
            Some(SlackRecord::ReleaseMessagePosted(winner)) => Ok(winner),
            None => Ok(posted),
        }
    }

    async fn catch_up(&self, known: &mut Known) -> Result<(), SlackError> {
        loop {
            let from = match known.revision {
                None => ReadFrom::Start,
                Some(r) => ReadFrom::Revision(r + 1),
            };
            let page = self
                .store
                .read(&self.stream, Direction::Forwards, from, READ_PAGE)
                .await?;
            for recorded in &page {
                match decode(&recorded.data)? {
                    SlackRecord::ReleaseMessagePosted(posted) => {
                        known.by_ticket.insert(posted.ticket.clone(), posted);
                    }
                }
                known.revision = Some(recorded.revision);
            }
            if page.len() < READ_PAGE {
                return Ok(());
            }
        }
    }
}

fn decode(data: &[u8]) -> Result<SlackRecord, SlackError> {
    serde_json::from_slice(data).map_err(|e| SlackError::Decode(e.to_string()))
}
