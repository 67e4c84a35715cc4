//! Error answers, shaped as the server sends them: a gRPC status whose trailers carry
//! `exception: <kind>` and its details (`RpcExceptions` in the server). Clients decide on those
//! trailers, not on the message: `not-leader` makes them reconnect to the advertised leader,
//! `stream-deleted` becomes their "stream deleted" error.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

fn with_trailers(code: Code, message: String, trailers: &[(&'static str, &str)]) -> Status {
    let mut metadata = MetadataMap::new();
    for (key, value) in trailers {
        // Values are stream names, numbers and host names; anything not sendable as ASCII
        // metadata is left out rather than failing the answer.
        if let Ok(value) = MetadataValue::try_from(*value) {
            metadata.insert(*key, value);
        }
    }
    Status::with_metadata(code, message, metadata)
}

/// What a node answers when it is not ready (starting, or the fault switch is on).
pub(crate) fn server_not_ready() -> Status {
    Status::new(Code::Unavailable, "Server Is Not Ready")
}

/// What a follower answers to a request that needs the leader.
pub(crate) fn not_leader(host: &str, port: u16) -> Status {
    with_trailers(
        Code::NotFound,
        "Leader info available".to_owned(),
        &[
            ("exception", "not-leader"),
            ("leader-endpoint-host", host),
            ("leader-endpoint-port", &port.to_string()),
        ],
    )
}

pub(crate) fn stream_deleted(stream: &str) -> Status {
    with_trailers(
        Code::FailedPrecondition,
        format!("Event stream '{stream}' is deleted."),
        &[("exception", "stream-deleted"), ("stream-name", stream)],
    )
}

/// Wrong expected version as a status: how deletes and tombstones report it (appends answer it
/// inside their response instead). Versions are the server's numbers: -1 no stream, -2 any,
/// -4 stream exists.
pub(crate) fn wrong_expected_version(
    operation: &str,
    stream: &str,
    expected: i64,
    actual: Option<i64>,
) -> Status {
    let actual_text = actual.map(|a| a.to_string()).unwrap_or_default();
    with_trailers(
        Code::FailedPrecondition,
        format!(
            "{operation} failed due to WrongExpectedVersion. Stream: {stream}, Expected version: {expected}, Actual version: {}",
            actual.unwrap_or(-1)
        ),
        &[
            ("exception", "wrong-expected-version"),
            ("stream-name", stream),
            ("expected-version", &expected.to_string()),
            ("actual-version", &actual_text),
        ],
    )
}

pub(crate) fn required_metadata_missing(property: &str) -> Status {
    with_trailers(
        Code::InvalidArgument,
        format!("Required Metadata Property '{property}' is missing"),
        &[
            ("exception", "missing-required-metadata-property"),
            ("required-metadata-properties", "type,content-type"),
        ],
    )
}

pub(crate) fn maximum_append_size_exceeded(max: usize) -> Status {
    with_trailers(
        Code::InvalidArgument,
        format!("Maximum Append Size of {max} Exceeded."),
        &[
            ("exception", "maximum-append-size-exceeded"),
            ("maximum-append-size", &max.to_string()),
        ],
    )
}

pub(crate) fn invalid_argument(what: impl Into<String>) -> Status {
    Status::new(Code::InvalidArgument, what.into())
}

/// How a live subscription ends when the double drops it: as when the node goes away.
pub(crate) fn subscription_dropped() -> Status {
    Status::new(
        Code::Unavailable,
        "Subscription dropped: the node is going away",
    )
}
