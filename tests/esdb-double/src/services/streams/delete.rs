//! `Streams.Delete` (soft: the stream reads as not found until written again, its revisions
//! continue) and `Streams.Tombstone` (hard: the stream is gone for good, and every later read,
//! write or subscription answers `exception: stream-deleted`). Unlike appends, these report a
//! wrong expected version as a `FAILED_PRECONDITION` status with `exception:
//! wrong-expected-version` trailers.

use tonic::Status;

use crate::convert::{expected_number, stream_name};
use crate::errors;
use crate::proto::streams::{
    DeleteReq, DeleteResp, TombstoneReq, TombstoneResp, delete_req, delete_resp, tombstone_req,
    tombstone_resp,
};
use crate::shared::Shared;
use crate::store::{Expected, WriteOutcome};

pub(super) fn delete(shared: &Shared, request: DeleteReq) -> Result<DeleteResp, Status> {
    use delete_req::options::ExpectedStreamRevision as E;
    let options = request
        .options
        .ok_or_else(|| errors::invalid_argument("options are required"))?;
    let stream = stream_name(options.stream_identifier)?;
    let expected = match options.expected_stream_revision {
        Some(E::Revision(r)) => Expected::Exact(r),
        Some(E::NoStream(())) => Expected::NoStream,
        Some(E::Any(())) => Expected::Any,
        Some(E::StreamExists(())) => Expected::StreamExists,
        None => return Err(errors::invalid_argument("an expected revision is required")),
    };
    let position = written(
        "Delete",
        &stream,
        expected,
        shared.store.delete(&stream, expected),
    )?;
    Ok(DeleteResp {
        position_option: Some(match position {
            Some(p) => delete_resp::PositionOption::Position(delete_resp::Position {
                commit_position: p,
                prepare_position: p,
            }),
            None => delete_resp::PositionOption::NoPosition(()),
        }),
    })
}

pub(super) fn tombstone(shared: &Shared, request: TombstoneReq) -> Result<TombstoneResp, Status> {
    use tombstone_req::options::ExpectedStreamRevision as E;
    let options = request
        .options
        .ok_or_else(|| errors::invalid_argument("options are required"))?;
    let stream = stream_name(options.stream_identifier)?;
    let expected = match options.expected_stream_revision {
        Some(E::Revision(r)) => Expected::Exact(r),
        Some(E::NoStream(())) => Expected::NoStream,
        Some(E::Any(())) => Expected::Any,
        Some(E::StreamExists(())) => Expected::StreamExists,
        None => return Err(errors::invalid_argument("an expected revision is required")),
    };
    let outcome = shared.store.tombstone(&stream, expected);
    let position = written("Tombstone", &stream, expected, outcome)?;
    Ok(TombstoneResp {
        position_option: Some(match position {
            Some(p) => tombstone_resp::PositionOption::Position(tombstone_resp::Position {
                commit_position: p,
                prepare_position: p,
            }),
            None => tombstone_resp::PositionOption::NoPosition(()),
        }),
    })
}

/// The position of a successful delete, or the error status the server sends.
fn written(
    operation: &str,
    stream: &str,
    expected: Expected,
    outcome: WriteOutcome,
) -> Result<Option<u64>, Status> {
    match outcome {
        WriteOutcome::Success { position, .. } => Ok(position),
        WriteOutcome::WrongExpectedVersion { current } => Err(errors::wrong_expected_version(
            operation,
            stream,
            expected_number(expected),
            current.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
        )),
        WriteOutcome::StreamDeleted => Err(errors::stream_deleted(stream)),
    }
}
