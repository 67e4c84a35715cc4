//! How a domain event is written to the store: its data, its metadata, and the hash chain.
//!
//! The store keeps bytes; this module turns an `Event` into a type name and JSON data, wraps it
//! in `Metadata` (who, from where, the command as typed, when, which versions), and links it to
//! the previous event of the ledger with a SHA-256 hash, so that `verify` proves that no event was
//! edited, removed or inserted after the fact.
//!
//! The hash of an event covers the previous hash, the event id, its type, the exact data bytes
//! and the metadata without the `hash` field, re-serialized as a JSON object with sorted keys.
//! Hashing the stored bytes of data (not a re-serialization) keeps the chain valid across
//! backends: `migrate` copies bytes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Event, UserId};
use crate::store::{NewEvent, RecordedEvent};

/// The metadata schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// `prev_hash` of the first event of a ledger.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Slack,
    Cli,
    Http,
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: UserId,
    /// The display name at the time (Slack's real name, or the CLI user).
    pub name: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// The command as the person typed it.
    pub command: String,
    #[serde(with = "millis")]
    pub recorded_at: DateTime<Utc>,
    pub schema_version: u32,
    pub app_version: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A stored event, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub revision: u64,
    pub id: Uuid,
    pub event: Event,
    pub metadata: Metadata,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("event at revision {revision} ({id}): bad data for {event_type}: {source}")]
    Data {
        revision: u64,
        id: Uuid,
        event_type: String,
        source: serde_json::Error,
    },
    #[error("event at revision {revision} ({id}): bad metadata: {source}")]
    Metadata {
        revision: u64,
        id: Uuid,
        source: serde_json::Error,
    },
    #[error(
        "event at revision {revision} ({id}): metadata schema version {version} is newer than this build reads ({SCHEMA_VERSION})"
    )]
    FutureVersion {
        revision: u64,
        id: Uuid,
        version: u32,
    },
}

/// Serializes an event's data (the part after the type tag).
pub fn encode_data(event: &Event) -> Vec<u8> {
    // The adjacently tagged form is {"type": T, "data": D}; write it and keep D.
    let mut value =
        serde_json::to_value(event).expect("events serialize: no maps with non-string keys");
    let data = value
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    serde_json::to_vec(&data).expect("a JSON value serializes")
}

/// Decodes an event from its type name and data bytes.
pub fn decode_event(event_type: &str, data: &[u8]) -> Result<Event, serde_json::Error> {
    let tag = serde_json::to_string(event_type)?;
    let mut buf = Vec::with_capacity(data.len() + tag.len() + 20);
    buf.extend_from_slice(b"{\"type\":");
    buf.extend_from_slice(tag.as_bytes());
    buf.extend_from_slice(b",\"data\":");
    buf.extend_from_slice(if data.is_empty() { b"null" } else { data });
    buf.push(b'}');
    serde_json::from_slice(&buf)
}

pub fn decode(recorded: &RecordedEvent) -> Result<Recorded, DecodeError> {
    let metadata: Metadata =
        serde_json::from_slice(&recorded.metadata).map_err(|source| DecodeError::Metadata {
            revision: recorded.revision,
            id: recorded.id,
            source,
        })?;
    if metadata.schema_version > SCHEMA_VERSION {
        return Err(DecodeError::FutureVersion {
            revision: recorded.revision,
            id: recorded.id,
            version: metadata.schema_version,
        });
    }
    let event =
        decode_event(&recorded.event_type, &recorded.data).map_err(|source| DecodeError::Data {
            revision: recorded.revision,
            id: recorded.id,
            event_type: recorded.event_type.clone(),
            source,
        })?;
    Ok(Recorded {
        revision: recorded.revision,
        id: recorded.id,
        event,
        metadata,
    })
}

/// What the writer knows about a command, for the metadata of the events it produces.
#[derive(Debug, Clone)]
pub struct Context {
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub command: String,
    pub recorded_at: DateTime<Utc>,
}

/// Builds the stored form of `event`, chained to `prev_hash`. Returns it and its hash.
pub fn seal(event: &Event, id: Uuid, context: &Context, prev_hash: &str) -> (NewEvent, String) {
    let data = encode_data(event);
    let mut metadata = Metadata {
        actor: context.actor.clone(),
        correlation_id: context.correlation_id,
        causation_id: context.causation_id,
        command: context.command.clone(),
        recorded_at: truncate_to_millis(context.recorded_at),
        schema_version: SCHEMA_VERSION,
        app_version: env!("CARGO_PKG_VERSION").to_string(),
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    let value = serde_json::to_value(&metadata).expect("metadata serializes");
    let hash = chain_hash(prev_hash, id, event.type_name(), &data, &value);
    metadata.hash = hash.clone();
    let new = NewEvent {
        id,
        event_type: event.type_name().to_string(),
        data,
        metadata: serde_json::to_vec(&metadata).expect("metadata serializes"),
    };
    (new, hash)
}

/// Why a stored event breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("metadata is not a JSON object with a `hash` and a `prev_hash`")]
    Malformed,
    #[error("prev_hash {found} does not match the previous event's hash {expected}")]
    BrokenLink { expected: String, found: String },
    #[error("hash {stored} does not match the content, which hashes to {computed}")]
    Tampered { stored: String, computed: String },
}

/// Checks one stored event against the previous hash; returns its hash.
pub fn check_link(recorded: &RecordedEvent, prev_hash: &str) -> Result<String, ChainError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&recorded.metadata).map_err(|_| ChainError::Malformed)?;
    let object = value.as_object_mut().ok_or(ChainError::Malformed)?;
    let stored = match object.remove("hash") {
        Some(serde_json::Value::String(h)) => h,
        _ => return Err(ChainError::Malformed),
    };
    object.insert("hash".into(), serde_json::Value::String(String::new()));
    let found = object
        .get("prev_hash")
        .and_then(|v| v.as_str())
        .ok_or(ChainError::Malformed)?;
    if found != prev_hash {
        return Err(ChainError::BrokenLink {
            expected: prev_hash.to_string(),
            found: found.to_string(),
        });
    }
    let computed = chain_hash(
        prev_hash,
        recorded.id,
        &recorded.event_type,
        &recorded.data,
        &value,
    );
    if computed != stored {
        return Err(ChainError::Tampered { stored, computed });
    }
    Ok(stored)
}

/// The stored hash of an event, without checking it (to resume a chain).
pub fn stored_hash(recorded: &RecordedEvent) -> Option<String> {
    #[derive(Deserialize)]
    struct HashOnly {
        hash: String,
    }
    serde_json::from_slice::<HashOnly>(&recorded.metadata)
        .ok()
        .map(|h| h.hash)
}

fn chain_hash(
    prev_hash: &str,
    id: Uuid,
    event_type: &str,
    data: &[u8],
    metadata_with_empty_hash: &serde_json::Value,
) -> String {
    // serde_json's map is ordered by key, so this serialization is canonical.
    let canonical =
        serde_json::to_vec(&sort_keys(metadata_with_empty_hash)).expect("a JSON value serializes");
    let mut hasher = Sha256::new();
    for part in [
        prev_hash.as_bytes(),
        id.as_bytes(),
        event_type.as_bytes(),
        data,
        &canonical,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// A copy with object keys sorted, whatever map order serde_json was built with.
fn sort_keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sort_keys).collect())
        }
        other => other.clone(),
    }
}

pub fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("a valid time stays valid")
}

/// RFC 3339 in UTC with milliseconds: `2026-11-25T08:17:10.123Z`.
mod millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}
