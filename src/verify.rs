//! `verify`: proves the ledger is whole. Revisions are contiguous from 0, every event's hash
//! chains to the one before it (nothing edited, removed or inserted), every event decodes, and
//! its data and metadata are valid against `schemas/`. The first bad event is named. Every
//! snapshot of the writer's state (`crate::snapshots`) must equal the state folded from the
//! ledger up to its revision, with that event's hash: a snapshot that differs is named too.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use thiserror::Error;
use uuid::Uuid;

use crate::domain::State;
use crate::envelope::{self, ChainError, GENESIS_HASH};
use crate::schemas::{self, SchemaError};
use crate::snapshots::{self, WriterSnapshot};
use crate::store::{EventStore, RecordedEvent, StoreError};

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
