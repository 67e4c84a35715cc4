//! Conversions between the wire messages and the store's types, in one place so that every RPC
//! reads ids, stream names and proposed events the same way.

use std::collections::HashMap;

use bytes::Bytes;
use tonic::Status;
use uuid::Uuid;

use crate::errors;
use crate::proto::shared::{self, StreamIdentifier};
use crate::proto::streams::ReadResp;
use crate::proto::streams::read_resp::{self, ReadEvent};
use crate::store::{Expected, Proposed, Recorded};

/// The server's numbers for expectations, as they appear in error messages and trailers.
pub(crate) fn expected_number(expected: Expected) -> i64 {
    match expected {
        Expected::Any => -2,
        Expected::NoStream => -1,
        Expected::StreamExists => -4,
        Expected::Exact(r) => i64::try_from(r).unwrap_or(i64::MAX),
    }
}

pub(crate) fn uuid_from_proto(id: Option<shared::Uuid>) -> Result<Uuid, Status> {
    match id.and_then(|u| u.value) {
        None => Ok(Uuid::nil()),
        Some(shared::uuid::Value::Structured(s)) => {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&s.most_significant_bits.to_be_bytes());
            bytes[8..].copy_from_slice(&s.least_significant_bits.to_be_bytes());
            Ok(Uuid::from_bytes(bytes))
        }
        Some(shared::uuid::Value::String(s)) => s
            .parse()
            .map_err(|_| errors::invalid_argument(format!("'{s}' is not a valid UUID"))),
    }
}

/// An id as the reader asked for it: the string form, or the structured (two 64-bit halves) one.
pub(crate) fn uuid_to_proto(id: Uuid, as_string: bool) -> shared::Uuid {
    let value = if as_string {
        shared::uuid::Value::String(id.to_string())
    } else {
        let bits = id.as_u128();
        shared::uuid::Value::Structured(shared::uuid::Structured {
            most_significant_bits: (bits >> 64) as u64 as i64,
            least_significant_bits: bits as u64 as i64,
        })
    };
    shared::Uuid { value: Some(value) }
}

pub(crate) fn stream_name(id: Option<StreamIdentifier>) -> Result<String, Status> {
    let id = id.ok_or_else(|| errors::invalid_argument("a stream identifier is required"))?;
    String::from_utf8(id.stream_name.to_vec())
        .map_err(|_| errors::invalid_argument("stream names are UTF-8"))
}

pub(crate) fn stream_identifier(name: &str) -> StreamIdentifier {
    StreamIdentifier {
        stream_name: Bytes::copy_from_slice(name.as_bytes()),
    }
}

/// A proposed event; the server requires the `type` (not empty) and `content-type` metadata and
/// keeps only whether the content type is JSON.
pub(crate) fn proposed(
    id: Option<shared::Uuid>,
    metadata: &HashMap<String, String>,
    custom_metadata: Bytes,
    data: Bytes,
) -> Result<Proposed, Status> {
    let event_type = metadata
        .get("type")
        .ok_or_else(|| errors::required_metadata_missing("type"))?;
    if event_type.is_empty() {
        // The real server's answer to an empty type.
        return Err(errors::invalid_argument("Empty eventType provided."));
    }
    let content_type = metadata
        .get("content-type")
        .ok_or_else(|| errors::required_metadata_missing("content-type"))?;
    Ok(Proposed {
        id: uuid_from_proto(id)?,
        event_type: event_type.clone(),
        is_json: content_type == "application/json",
        data,
        custom_metadata,
    })
}

/// A stored event as a read or a subscription sends it.
pub(crate) fn read_event(event: &Recorded, uuid_as_string: bool) -> ReadResp {
    let metadata = HashMap::from([
        ("type".to_owned(), event.event_type.clone()),
        ("content-type".to_owned(), event.content_type().to_owned()),
        ("created".to_owned(), event.created_ticks.to_string()),
    ]);
    let recorded = read_resp::read_event::RecordedEvent {
        id: Some(uuid_to_proto(event.id, uuid_as_string)),
        stream_identifier: Some(stream_identifier(&event.stream)),
        stream_revision: event.revision,
        prepare_position: event.position,
        commit_position: event.position,
        metadata,
        custom_metadata: event.custom_metadata.clone(),
        data: event.data.clone(),
    };
    ReadResp {
        content: Some(read_resp::Content::Event(ReadEvent {
            event: Some(recorded),
            link: None,
            position: Some(read_resp::read_event::Position::CommitPosition(
                event.position,
            )),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_in_both_forms() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        for as_string in [false, true] {
            assert_eq!(
                uuid_from_proto(Some(uuid_to_proto(id, as_string))).ok(),
                Some(id)
            );
        }
    }
}
