//! What the sinks have delivered, recorded in their own stream of the same store,
//! `dobrobot-deliveries-<environment>`, so that every replica and every restart agrees on it:
//! who may deliver (the lease), up to which ledger revision each sink is done (its checkpoint),
//! what was given up (dead letters), and what a sink must remember (a start's Grafana
//! annotation id, which its finish turns into a region).
//!
//! Every record is appended expecting the stream's revision as this replica last read it, and
//! only while the stream says this replica holds a live lease: the store's optimistic check
//! makes one replica win a lease, and a replica that lost its lease (it paused past the term,
//! another took over) cannot move a checkpoint any more. That is the whole of the
//! coordination; no consensus of our own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::TicketKey;
use crate::store::{EventStore, ExpectedRevision, NewEvent, StoreError};

use super::SinkError;

/// The stream of the sinks' own records for an environment.
pub fn stream_name(environment: &str) -> String {
    format!("dobrobot-deliveries-{environment}")
}

/// The right to deliver, until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub replica: String,
    pub at: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// A marker given up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub sink: String,
    pub revision: u64,
    pub event_id: Uuid,
    pub attempts: u32,
    /// The replica that gave up (held the lease).
    pub replica: String,
    /// The last failure, with the receiver's answer when it gave one.
    pub error: String,
}

/// A start's Grafana annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotated {
    pub ticket: TicketKey,
    pub start_event_id: Uuid,
    pub annotation_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Record {
    LeaseTaken(Lease),
    /// The holder stopped (a planned restart, a scale-down): another replica may take the
    /// lease at once instead of waiting for it to run out.
    LeaseReleased {
        replica: String,
    },
    /// `sink` is done with every ledger event up to `revision` (`None`: the ledger was empty);
    /// `event_id` is the marker delivered at `revision`, if one was. A sink's first checkpoint
    /// is where it starts: history from before it was configured is not delivered.
    Delivered {
        sink: String,
        revision: Option<u64>,
        event_id: Option<Uuid>,
        /// The replica that delivered it (held the lease).
        replica: String,
    },
    /// Moves the sink's checkpoint on, like `Delivered`.
    DeadLettered(DeadLetter),
    Annotated(Annotated),
}

impl Record {
    fn type_name(&self) -> &'static str {
        match self {
            Record::LeaseTaken(_) => "LeaseTaken",
            Record::LeaseReleased { .. } => "LeaseReleased",
            Record::Delivered { .. } => "Delivered",
            Record::DeadLettered(_) => "DeadLettered",
            Record::Annotated(_) => "Annotated",
        }
    }
}

/// Where delivering stands, as the stream says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The stream's own last revision: every append expects it.
    pub stream_revision: Option<u64>,
    pub lease: Option<Lease>,
    /// Each sink's checkpoint; a sink absent here has not started.
    pub checkpoints: HashMap<String, Option<u64>>,
    /// Grafana annotation ids by the start event's id.
    pub annotations: HashMap<Uuid, i64>,
    pub dead_letters: Vec<DeadLetter>,
}

impl View {
    /// Whether `replica` holds the lease at `now`.
    pub fn holds(&self, replica: &str, now: DateTime<Utc>) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.replica == replica && l.until > now)
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::LeaseTaken(lease) => self.lease = Some(lease),
            Record::LeaseReleased { replica } => {
                if self.lease.as_ref().is_some_and(|l| l.replica == replica) {
                    self.lease = None;
                }
            }
            Record::Delivered { sink, revision, .. } => self.advance(sink, revision),
            Record::DeadLettered(dead) => {
                self.advance(dead.sink.clone(), Some(dead.revision));
                self.dead_letters.push(dead);
            }
            Record::Annotated(a) => {
                self.annotations.insert(a.start_event_id, a.annotation_id);
            }
        }
    }

    /// A checkpoint only moves forwards.
    fn advance(&mut self, sink: String, revision: Option<u64>) {
        let current = self.checkpoints.entry(sink).or_insert(revision);
        if revision > *current {
            *current = revision;
        }
    }
}

/// Why a record was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Another replica holds the lease (or this one's ran out).
    NotHolder,
}

pub struct Deliveries {
    store: Arc<dyn EventStore>,
    stream: String,
    view: Mutex<View>,
}

impl Deliveries {
    pub async fn open(store: Arc<dyn EventStore>, environment: &str) -> Result<Self, SinkError> {
        let deliveries = Deliveries {
            store,
            stream: stream_name(environment),
            view: Mutex::new(View::default()),
        };
        deliveries
            .catch_up(&mut *deliveries.view.lock().await)
            .await?;
        Ok(deliveries)
    }

    /// Where delivering stands now, with what other replicas recorded.
    pub async fn view(&self) -> Result<View, SinkError> {
        let mut view = self.view.lock().await;
        self.catch_up(&mut view).await?;
        Ok(view.clone())
    }

    /// Takes or renews the lease for `replica` for `term`, unless another replica holds a live
    /// one; whether `replica` holds it afterwards. A lease of its own is renewed only once a
    /// third of its term has passed, so an idle replica records nothing.
    pub async fn lease(&self, replica: &str, term: Duration) -> Result<bool, SinkError> {
        let mut view = self.view.lock().await;
        for _ in 0..3 {
            self.catch_up(&mut view).await?;
            let now = Utc::now();
            let term = chrono::TimeDelta::from_std(term).unwrap_or(chrono::TimeDelta::seconds(10));
            match &view.lease {
                Some(lease) if lease.replica != replica && lease.until > now => return Ok(false),
                Some(lease) if lease.replica == replica && lease.until - now > term * 2 / 3 => {
                    return Ok(true);
                }
                _ => {}
            }
            let record = Record::LeaseTaken(Lease {
                replica: replica.to_string(),
                at: now,
                until: now + term,
            });
            match self.append_expecting(&mut view, &record).await? {
                true => return Ok(true),
                // Someone appended first: read what, and decide again.
                false => continue,
            }
        }
        Ok(false)
    }

    /// Gives the lease up if `replica` holds it, so that another replica delivers at once;
    /// whether it was released. Only the holder can: a release appended after another replica
    /// took the lease over would expect a revision the stream has passed.
    pub async fn release(&self, replica: &str) -> Result<bool, SinkError> {
        let mut view = self.view.lock().await;
        self.catch_up(&mut view).await?;
        if !view.holds(replica, Utc::now()) {
            return Ok(false);
        }
        let record = Record::LeaseReleased {
            replica: replica.to_string(),
        };
        self.append_expecting(&mut view, &record).await
    }

    /// Appends `records` if `replica` still holds the lease (see the module's comment).
    pub async fn record(
        &self,
        replica: &str,
        records: &[Record],
    ) -> Result<Result<(), Refused>, SinkError> {
        let mut view = self.view.lock().await;
        loop {
            self.catch_up(&mut view).await?;
            if !view.holds(replica, Utc::now()) {
                return Ok(Err(Refused::NotHolder));
            }
            let expected = expected(&view);
            let events = records.iter().map(event).collect::<Result<Vec<_>, _>>()?;
            match self.store.append(&self.stream, expected, events).await {
                Ok(_) => {
                    self.catch_up(&mut view).await?;
                    return Ok(Ok(()));
                }
                // Another replica appended; whether it took the lease is checked above.
                Err(StoreError::WrongExpectedRevision { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn append_expecting(&self, view: &mut View, record: &Record) -> Result<bool, SinkError> {
        let appended = self
            .store
            .append(&self.stream, expected(view), vec![event(record)?])
            .await;
        self.catch_up(view).await?;
        match appended {
            Ok(_) => Ok(true),
            Err(StoreError::WrongExpectedRevision { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn catch_up(&self, view: &mut View) -> Result<(), SinkError> {
        let from = view.stream_revision.map_or(0, |r| r + 1);
        let mut pages = self.store.read_pages(&self.stream, from);
        while let Some(page) = pages.try_next().await? {
            for recorded in &page {
                view.apply(decode(&recorded.data)?);
                view.stream_revision = Some(recorded.revision);
            }
        }
        Ok(())
    }
}

fn expected(view: &View) -> ExpectedRevision {
    match view.stream_revision {
        None => ExpectedRevision::NoStream,
        Some(r) => ExpectedRevision::Exact(r),
    }
}

fn event(record: &Record) -> Result<NewEvent, SinkError> {
    NewEvent::record(Uuid::now_v7(), record.type_name(), record)
        .map_err(|e| SinkError::Decode(e.to_string()))
}

/// A record of the deliveries stream, as stored.
pub fn decode(data: &[u8]) -> Result<Record, SinkError> {
    serde_json::from_slice(data).map_err(|e| SinkError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(sink: &str, revision: Option<u64>) -> Record {
        Record::Delivered {
            sink: sink.into(),
            revision,
            event_id: None,
            replica: "a".into(),
        }
    }

    #[test]
    fn a_checkpoint_only_moves_forwards_and_a_dead_letter_moves_it() {
        let mut view = View::default();
        view.apply(delivered("grafana", None));
        assert_eq!(view.checkpoints["grafana"], None);
        view.apply(delivered("grafana", Some(7)));
        view.apply(delivered("grafana", Some(3)));
        assert_eq!(view.checkpoints["grafana"], Some(7));
        view.apply(Record::DeadLettered(DeadLetter {
            sink: "grafana".into(),
            revision: 9,
            event_id: Uuid::nil(),
            attempts: 3,
            replica: "a".into(),
            error: "500".into(),
        }));
        assert_eq!(view.checkpoints["grafana"], Some(9));
        assert_eq!(view.dead_letters.len(), 1);
        assert!(!view.checkpoints.contains_key("pagerduty"));
    }

    #[test]
    fn a_lease_is_held_by_its_replica_until_it_runs_out() {
        let now = Utc::now();
        let mut view = View::default();
        view.apply(Record::LeaseTaken(Lease {
            replica: "a".into(),
            at: now,
            until: now + chrono::TimeDelta::seconds(10),
        }));
        assert!(view.holds("a", now));
        assert!(!view.holds("b", now));
        assert!(!view.holds("a", now + chrono::TimeDelta::seconds(11)));
    }
}
