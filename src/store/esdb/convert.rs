//! Events to and from the client's types. JSON data travels as `application/json` byte for byte
//! (the ledger hashes those bytes), anything else as `application/octet-stream`.

use kurrentdb::{EventData, ResolvedEvent};
use serde_json::value::RawValue;

use crate::store::{NewEvent, RecordedEvent, StoreError};

pub(super) fn event_data(event: &NewEvent) -> EventData {
    let data = match raw_json(&event.data) {
        Some(json) => EventData::json(&event.event_type, &json).ok(),
        None => None,
    }
    .unwrap_or_else(|| EventData::binary(&event.event_type, event.data.clone().into()));
    data.id(event.id).metadata(event.metadata.clone().into())
}

/// `data` as a JSON value that serializes back to the same bytes, if it is exactly one.
fn raw_json(data: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(data).ok()?;
    let json = RawValue::from_string(text.to_string()).ok()?;
    // `from_string` drops whitespace around the value.
    (json.get().len() == data.len()).then_some(json)
}

pub(super) fn recorded(
    stream: &str,
    resolved: &ResolvedEvent,
) -> Result<RecordedEvent, StoreError> {
    let event = resolved
        .event
        .as_ref()
        .or(resolved.link.as_ref())
        .ok_or_else(|| StoreError::Backend(format!("stream {stream}: a read without an event")))?;
    Ok(RecordedEvent {
        stream: stream.to_string(),
        revision: event.revision,
        id: event.id,
        event_type: event.event_type.clone(),
        data: event.data.to_vec(),
        metadata: event.custom_metadata.to_vec(),
        created: event.created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_json_values_travel_as_json() {
        assert!(raw_json(br#"{"a":1,"b":"caf\u00e9"}"#).is_some());
        assert!(raw_json(b"[1, 2]").is_some());
        assert!(raw_json(b" {}").is_none(), "whitespace would be lost");
        assert!(raw_json(b"{} {}").is_none());
        assert!(raw_json(&[0xff, 0x00]).is_none());
        assert!(raw_json(b"").is_none());
    }
}
