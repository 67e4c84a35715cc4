//! `verify`: proves the ledger is whole. Revisions are contiguous from 0, every event's hash
//! chains to the one before it (nothing edited, removed or inserted), every event decodes, and
//! its data and metadata are valid against `schemas/`. The first bad event is named.

use std::sync::Arc;

use futures::TryStreamExt;
use thiserror::Error;
use uuid::Uuid;

use crate::envelope::{self, ChainError, GENESIS_HASH};
use crate::schemas::{self, SchemaError};
use crate::store::{EventStore, RecordedEvent, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub events: u64,
    pub last_hash: String,
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
}

pub async fn verify(store: &Arc<dyn EventStore>, stream: &str) -> Result<Report, VerifyError> {
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
            expected += 1;
        }
    }
    Ok(Report {
        events: expected,
        last_hash: hash,
    })
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
