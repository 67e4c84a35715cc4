//! `Streams.BatchAppend`: a bidirectional stream of writes, each identified by a correlation id,
//! its events possibly spread over several requests until `is_final`. Each write is answered on
//! the response stream as the server does: success with the current revision and position, or a
//! `google.rpc.Status` error carrying a packed detail (`WrongExpectedVersion` with code
//! ALREADY_EXISTS, `StreamDeleted`, `Timeout`, `BadRequest`, `MaximumAppendSizeExceeded`).
//! When the client closes its side, the call ends once every write is answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use uuid::Uuid;

use super::MAX_APPEND_SIZE;
use crate::convert::{proposed, stream_identifier, stream_name, uuid_from_proto};
use crate::proto::google::rpc;
use crate::proto::shared::{self, AllStreamPosition};
use crate::proto::streams::batch_append_req::options::{DeadlineOption, ExpectedStreamPosition};
use crate::proto::streams::batch_append_resp::{self, success};
use crate::proto::streams::{BatchAppendReq, BatchAppendResp};
use crate::shared::Shared;
use crate::store::{Expected, Proposed, WriteOutcome};

/// A write whose events are still arriving.
struct Pending {
    stream: String,
    expected: Expected,
    events: Vec<Proposed>,
    size: usize,
}

pub(super) fn batch_append(
    shared: Arc<Shared>,
    mut requests: Streaming<BatchAppendReq>,
) -> ReceiverStream<Result<BatchAppendResp, Status>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut pending: HashMap<Uuid, Pending> = HashMap::new();
        while let Ok(Some(request)) = requests.message().await {
            let correlation = request.correlation_id.clone();
            let Some(answer) = handle(&shared, &mut pending, request) else {
                continue;
            };
            let response = BatchAppendResp {
                correlation_id: correlation,
                ..answer
            };
            if tx.send(Ok(response)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Takes one request; returns the answer once a write is complete (or refused).
fn handle(
    shared: &Shared,
    pending: &mut HashMap<Uuid, Pending>,
    request: BatchAppendReq,
) -> Option<BatchAppendResp> {
    let correlation = match uuid_from_proto(request.correlation_id) {
        Ok(id) => id,
        Err(status) => return Some(error(None, bad_request(status.message()))),
    };
    if let Some(options) = request.options {
        let stream = match stream_name(options.stream_identifier) {
            Ok(stream) => stream,
            Err(_) => {
                return Some(error(
                    None,
                    bad_request("Required field StreamIdentifier not set."),
                ));
            }
        };
        if deadline_passed(options.deadline_option) {
            return Some(error(
                Some(&stream),
                detail(4, "Timeout", "Timeout", &shared::Timeout {}),
            ));
        }
        let expected = match options.expected_stream_position {
            Some(ExpectedStreamPosition::StreamPosition(r)) => Expected::Exact(r),
            Some(ExpectedStreamPosition::NoStream(())) => Expected::NoStream,
            Some(ExpectedStreamPosition::Any(())) => Expected::Any,
            Some(ExpectedStreamPosition::StreamExists(())) => Expected::StreamExists,
            None => {
                return Some(error(
                    Some(&stream),
                    bad_request("An expected stream position is required."),
                ));
            }
        };
        pending.entry(correlation).or_insert(Pending {
            stream,
            expected,
            events: Vec::new(),
            size: 0,
        });
    }
    let write = pending.get_mut(&correlation)?;
    for message in request.proposed_messages {
        write.size += message.data.len() + message.custom_metadata.len();
        match proposed(
            message.id,
            &message.metadata,
            message.custom_metadata,
            message.data,
        ) {
            Ok(event) => write.events.push(event),
            Err(status) => {
                let stream = write.stream.clone();
                pending.remove(&correlation);
                return Some(error(Some(&stream), bad_request(status.message())));
            }
        }
    }
    if write.size > MAX_APPEND_SIZE {
        let stream = write.stream.clone();
        pending.remove(&correlation);
        let max = u32::try_from(MAX_APPEND_SIZE).unwrap_or(u32::MAX);
        let exceeded = shared::MaximumAppendSizeExceeded {
            max_append_size: max,
        };
        let status = detail(
            3,
            "MaximumAppendSizeExceeded",
            "MaximumAppendSizeExceeded",
            &exceeded,
        );
        return Some(error(Some(&stream), status));
    }
    if !request.is_final {
        return None;
    }
    let write = pending.remove(&correlation)?;
    let outcome = shared
        .store
        .append(&write.stream, write.expected, write.events);
    Some(answer(&write.stream, write.expected, outcome))
}

fn answer(stream: &str, expected: Expected, outcome: WriteOutcome) -> BatchAppendResp {
    match outcome {
        WriteOutcome::Success { current, position } => BatchAppendResp {
            stream_identifier: Some(stream_identifier(stream)),
            result: Some(batch_append_resp::Result::Success(
                batch_append_resp::Success {
                    current_revision_option: Some(match current {
                        Some(r) => success::CurrentRevisionOption::CurrentRevision(r),
                        None => success::CurrentRevisionOption::NoStream(()),
                    }),
                    position_option: Some(match position {
                        Some(p) => success::PositionOption::Position(AllStreamPosition {
                            commit_position: p,
                            prepare_position: p,
                        }),
                        None => success::PositionOption::NoPosition(()),
                    }),
                },
            )),
            ..Default::default()
        },
        WriteOutcome::WrongExpectedVersion { current } => {
            use shared::wrong_expected_version::{
                CurrentStreamRevisionOption as C, ExpectedStreamPositionOption as E,
            };
            let wrong = shared::WrongExpectedVersion {
                current_stream_revision_option: Some(match current {
                    Some(r) => C::CurrentStreamRevision(r),
                    None => C::CurrentNoStream(()),
                }),
                expected_stream_position_option: Some(match expected {
                    Expected::Exact(r) => E::ExpectedStreamPosition(r),
                    Expected::Any => E::ExpectedAny(()),
                    Expected::StreamExists => E::ExpectedStreamExists(()),
                    Expected::NoStream => E::ExpectedNoStream(()),
                }),
            };
            let status = detail(6, "WrongExpectedVersion", "WrongExpectedVersion", &wrong);
            error(Some(stream), status)
        }
        WriteOutcome::StreamDeleted => {
            let deleted = shared::StreamDeleted {
                stream_identifier: Some(stream_identifier(stream)),
            };
            error(
                Some(stream),
                detail(5, "StreamDeleted", "StreamDeleted", &deleted),
            )
        }
    }
}

/// The server takes the smaller of the client's deadline and its own write timeout; a deadline
/// already passed is answered with a timeout at once. (`deadline` is meant as a duration; the
/// Rust client fills it with the time since the Unix epoch, which only makes it very long.)
fn deadline_passed(deadline: Option<DeadlineOption>) -> bool {
    match deadline {
        Some(DeadlineOption::Deadline(d)) => d.seconds < 0 || (d.seconds == 0 && d.nanos <= 0),
        Some(DeadlineOption::Deadline21100(at)) => SystemTime::try_from(at)
            .map(|at| at <= SystemTime::now())
            .unwrap_or(false),
        None => false,
    }
}

fn bad_request(message: &str) -> rpc::Status {
    let bad = shared::BadRequest {
        message: message.to_owned(),
    };
    detail(3, "BadRequest", "BadRequest", &bad)
}

/// A `google.rpc.Status` with one packed detail, as the server builds them.
fn detail(code: i32, message: &str, type_name: &str, detail: &impl Message) -> rpc::Status {
    rpc::Status {
        code,
        message: message.to_owned(),
        details: Some(prost_types::Any {
            type_url: format!("type.googleapis.com/event_store.client.{type_name}"),
            value: detail.encode_to_vec(),
        }),
    }
}

fn error(stream: Option<&str>, status: rpc::Status) -> BatchAppendResp {
    BatchAppendResp {
        stream_identifier: stream.map(stream_identifier),
        result: Some(batch_append_resp::Result::Error(status)),
        ..Default::default()
    }
}
