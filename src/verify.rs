//! `verify`: proves the ledger is whole. Revisions are contiguous from 0, every event's hash
//! chains to the one before it (nothing edited, removed or inserted), every event decodes, and
//! its data and metadata are valid against `schemas/`. The first bad event is named. Every
//! snapshot of the writer's state (`crate::snapshots`) must equal the state folded from the
//! ledger up to its revision, with that event's hash: a snapshot that differs is named too. And
//! the persisted read models (`verify_models`) must equal a fresh fold up to their checkpoint.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use futures::TryStreamExt;
use thiserror::Error;
use uuid::Uuid;

use crate::domain::{Event, ServiceName, State, TicketKey};
use crate::envelope::{self, ChainError, GENESIS_HASH};
use crate::follower::ReadModels;
use crate::models::{ModelsError, StoredModels};
use crate::projections::history::services_of;
use crate::projections::{Deployments, HistoryEntry, Projection};
use crate::schemas::{self, SchemaError};
use crate::snapshots::{self, WriterSnapshot};
use crate::store::{Direction, EventStore, ReadFrom, RecordedEvent, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub events: u64,
    pub last_hash: String,
    /// Snapshots checked against the fold.
    pub snapshots: usize,
}

#[derive(Debug, Error)]
#[error("event at revision {revision} ({id}, {event_type}): {problem}")]
pub struct BadEvent {
    pub revision: u64,
    pub id: Uuid,
    pub event_type: String,
    pub problem: Problem,
}

#[derive(Debug, Error)]
pub enum Problem {
    #[error("expected revision {expected}: the ledger has a gap")]
    Gap { expected: u64 },
    #[error("hash chain broken: {0}")]
    Chain(#[from] ChainError),
    #[error("cannot be decoded: {0}")]
    Decode(String),
    #[error("invalid against its schema: {0}")]
    Schema(#[from] SchemaError),
}

#[derive(Debug, Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bad(#[from] Box<BadEvent>),
    #[error("the snapshot at revision {revision} {problem}")]
    BadSnapshot { revision: u64, problem: String },
}

/// The ledger and its snapshots.
pub async fn verify(store: &Arc<dyn EventStore>, stream: &str) -> Result<Report, VerifyError> {
    let mut by_revision = BTreeMap::new();
    for (position, snapshot) in snapshots::all(store, stream).await? {
        match snapshot {
            Ok(snapshot) => by_revision
                .entry(snapshot.revision)
                .or_insert_with(Vec::new)
                .push(Ok(snapshot)),
            Err(error) => {
                return Err(VerifyError::BadSnapshot {
                    revision: position,
                    problem: format!("(snapshot #{position}) cannot be read: {error}"),
                });
            }
        }
    }
    verify_with(store, stream, by_revision).await
}

/// The ledger alone (what `migrate` copies; snapshots are a cache of each store).
pub async fn verify_ledger(
    store: &Arc<dyn EventStore>,
    stream: &str,
) -> Result<Report, VerifyError> {
    verify_with(store, stream, BTreeMap::new()).await
}

async fn verify_with(
    store: &Arc<dyn EventStore>,
    stream: &str,
    mut snapshots: BTreeMap<u64, Vec<Result<WriterSnapshot, String>>>,
) -> Result<Report, VerifyError> {
    let checked = snapshots.values().map(Vec::len).sum();
    let mut state = State::default();
    let mut expected = 0u64;
    let mut hash = GENESIS_HASH.to_string();
    let mut pages = store.read_pages(stream, 0);
    while let Some(page) = pages.try_next().await? {
        for recorded in &page {
            hash = check(recorded, expected, &hash).map_err(|problem| {
                Box::new(BadEvent {
                    revision: recorded.revision,
                    id: recorded.id,
                    event_type: recorded.event_type.clone(),
                    problem,
                })
            })?;
            let decoded = envelope::decode(recorded).map_err(|e| {
                Box::new(BadEvent {
                    revision: recorded.revision,
                    id: recorded.id,
                    event_type: recorded.event_type.clone(),
                    problem: Problem::Decode(e.to_string()),
                })
            })?;
            state.evolve(&decoded.event, decoded.metadata.recorded_at);
            for snapshot in snapshots.remove(&recorded.revision).unwrap_or_default() {
                compare(snapshot, recorded.revision, &state, &hash)?;
            }
            expected += 1;
        }
    }
    // A snapshot of a revision the ledger does not have.
    if let Some((revision, _)) = snapshots.into_iter().next() {
        return Err(VerifyError::BadSnapshot {
            revision,
            problem: "is of a revision the ledger does not have".to_string(),
        });
    }
    Ok(Report {
        events: expected,
        last_hash: hash,
        snapshots: checked,
    })
}

/// A snapshot must be readable and equal the fold at its revision.
fn compare(
    snapshot: Result<WriterSnapshot, String>,
    revision: u64,
    state: &State,
    hash: &str,
) -> Result<(), VerifyError> {
    let bad = |problem: String| VerifyError::BadSnapshot { revision, problem };
    let snapshot = snapshot.map_err(|e| bad(format!("cannot be read: {e}")))?;
    if snapshot.revision != revision {
        return Err(bad(format!("says it is of revision {}", snapshot.revision)));
    }
    if snapshot.hash != hash {
        return Err(bad("has a hash the ledger's chain does not".to_string()));
    }
    if &snapshot.state != state {
        return Err(bad(
            "differs from the state folded from the ledger".to_string()
        ));
    }
    Ok(())
}

fn check(recorded: &RecordedEvent, expected: u64, prev_hash: &str) -> Result<String, Problem> {
    if recorded.revision != expected {
        return Err(Problem::Gap { expected });
    }
    let hash = envelope::check_link(recorded, prev_hash)?;
    let data: serde_json::Value = serde_json::from_slice(&recorded.data)
        .map_err(|e| Problem::Decode(format!("data is not JSON: {e}")))?;
    let metadata: serde_json::Value = serde_json::from_slice(&recorded.metadata)
        .map_err(|e| Problem::Decode(format!("metadata is not JSON: {e}")))?;
    schemas::validate_event(&recorded.event_type, &data)?;
    schemas::validate_metadata(&metadata)?;
    envelope::decode(recorded).map_err(|e| Problem::Decode(e.to_string()))?;
    Ok(hash)
}

/// What the check of the persisted read models found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsReport {
    /// The checkpoint they were compared at; `None` when they hold nothing yet.
    pub revision: Option<u64>,
}

#[derive(Debug, Error)]
pub enum ModelsVerifyError {
    #[error(transparent)]
    Models(#[from] ModelsError),
    #[error(transparent)]
    Projection(#[from] crate::projections::ProjectionError),
    #[error(
        "the persisted read models' checkpoint (revision {revision}) is not the ledger's \
         (they are rebuilt when next used, or now with `dobrobot projections rebuild`)"
    )]
    Checkpoint { revision: u64 },
    #[error(
        "the persisted {model} differ from a fresh fold of the ledger {at} \
         (`dobrobot projections rebuild` makes them again)"
    )]
    Differs { model: &'static str, at: String },
}

/// Each persisted read model (`crate::models`) equals a fresh fold of the ledger up to their
/// checkpoint: the history entry by entry as the ledger is read, the deployments record by
/// record, the live state and the waitlist whole. The first difference is named.
pub async fn verify_models(
    store: &Arc<dyn EventStore>,
    stream: &str,
    models: &Arc<StoredModels>,
) -> Result<ModelsReport, ModelsVerifyError> {
    let Some(checkpoint) = models.checkpoint()? else {
        return Ok(ModelsReport { revision: None });
    };
    let upto = checkpoint.revision;
    let vouched = store
        .read(stream, Direction::Forwards, ReadFrom::Revision(upto), 1)
        .await
        .map_err(crate::projections::ProjectionError::from)?;
    let ours = match vouched.first() {
        Some(raw) if raw.revision == upto && checkpoint.stream == stream => {
            envelope::decode(raw).map_err(crate::projections::ProjectionError::from)?
        }
        _ => return Err(ModelsVerifyError::Checkpoint { revision: upto }),
    };
    if ours.metadata.hash != checkpoint.hash {
        return Err(ModelsVerifyError::Checkpoint { revision: upto });
    }

    let mut fresh = ReadModels::default();
    let mut deployments = Deployments::default();
    let mut requested: HashMap<TicketKey, Vec<ServiceName>> = HashMap::new();
    let mut stored: VecDeque<HistoryEntry> = VecDeque::new();
    let mut next_stored = 0u64;
    let mut pages = store.read_pages(stream, 0);
    'ledger: while let Some(page) = pages
        .try_next()
        .await
        .map_err(crate::projections::ProjectionError::from)?
    {
        for raw in &page {
            let recorded =
                envelope::decode(raw).map_err(crate::projections::ProjectionError::from)?;
            if recorded.revision > upto {
                break 'ledger;
            }
            fresh.apply(&recorded);
            deployments.apply(&recorded);
            if let Event::ReleaseRequested {
                ticket, services, ..
            } = &recorded.event
            {
                requested.insert(ticket.clone(), services.clone());
            }
            let services = services_of(&recorded.event, |t| requested.get(t).cloned());
            let expected = HistoryEntry::of(&recorded, services);
            if stored.is_empty() {
                let rows = models.read(|r| r.history_from(next_stored, 1000))?;
                next_stored = rows.last().map_or(next_stored, |e| e.revision + 1);
                stored.extend(rows);
            }
            if stored.pop_front().as_ref() != Some(&expected) {
                return Err(ModelsVerifyError::Differs {
                    model: "history",
                    at: format!("at revision {}", recorded.revision),
                });
            }
        }
    }
    if !stored.is_empty() || !models.read(|r| r.history_from(next_stored, 1))?.is_empty() {
        return Err(ModelsVerifyError::Differs {
            model: "history",
            at: format!("after revision {upto}: it has entries the ledger does not"),
        });
    }
    let persisted = models.read(|r| r.all_deployments())?;
    if let Some(i) = (0..persisted.len().max(deployments.all.len()))
        .find(|&i| persisted.get(i) != deployments.all.get(i))
    {
        let revision = deployments
            .all
            .get(i)
            .or(persisted.get(i))
            .map_or(upto, |d| d.revision);
        return Err(ModelsVerifyError::Differs {
            model: "deployments",
            at: format!("at the request at revision {revision}"),
        });
    }
    let held = models.held()?;
    if held.live != fresh.live {
        return Err(ModelsVerifyError::Differs {
            model: "live state",
            at: format!("at revision {upto}"),
        });
    }
    if held.waitlist != fresh.waitlist {
        return Err(ModelsVerifyError::Differs {
            model: "waitlist",
            at: format!("at revision {upto}"),
        });
    }
    Ok(ModelsReport {
        revision: Some(upto),
    })
}
