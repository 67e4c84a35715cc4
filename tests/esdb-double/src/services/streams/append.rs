//! `Streams.Append`: a client stream of the options, then the proposed events; one answer.
//! A wrong expected version is not an error status: it comes back inside
//! `AppendResp.wrong_expected_version`, with the status OK, in both the 20.6 fields and the
//! current ones.

use tonic::{Status, Streaming};

use super::MAX_APPEND_SIZE;
use crate::convert::{proposed, stream_name};
use crate::errors;
use crate::proto::streams::append_req::{self, options::ExpectedStreamRevision};
use crate::proto::streams::append_resp::{self, wrong_expected_version as wev};
use crate::proto::streams::{AppendReq, AppendResp};
use crate::shared::Shared;
use crate::store::{Expected, WriteOutcome};

pub(super) async fn append(
    shared: &Shared,
    mut requests: Streaming<AppendReq>,
) -> Result<AppendResp, Status> {
    let options = match requests.message().await? {
        Some(AppendReq {
            content: Some(append_req::Content::Options(options)),
        }) => options,
        _ => {
            return Err(errors::invalid_argument(
                "an append starts with its options",
            ));
        }
    };
    let stream = stream_name(options.stream_identifier)?;
    let expected = match options.expected_stream_revision {
        Some(ExpectedStreamRevision::Revision(r)) => Expected::Exact(r),
        Some(ExpectedStreamRevision::NoStream(())) => Expected::NoStream,
        Some(ExpectedStreamRevision::Any(())) => Expected::Any,
        Some(ExpectedStreamRevision::StreamExists(())) => Expected::StreamExists,
        None => return Err(errors::invalid_argument("an expected revision is required")),
    };

    let mut events = Vec::new();
    let mut size = 0;
    while let Some(request) = requests.message().await? {
        let Some(append_req::Content::ProposedMessage(message)) = request.content else {
            return Err(errors::invalid_argument(
                "only proposed messages follow the options",
            ));
        };
        size += message.data.len();
        if size > MAX_APPEND_SIZE {
            return Err(errors::maximum_append_size_exceeded(MAX_APPEND_SIZE));
        }
        events.push(proposed(
            message.id,
            &message.metadata,
            message.custom_metadata,
            message.data,
        )?);
    }

    let result = match shared.store.append(&stream, expected, events) {
        WriteOutcome::Success { current, position } => {
            append_resp::Result::Success(success(current, position))
        }
        WriteOutcome::WrongExpectedVersion { current } => {
            append_resp::Result::WrongExpectedVersion(wrong_expected_version(current, expected))
        }
        WriteOutcome::StreamDeleted => return Err(errors::stream_deleted(&stream)),
    };
    Ok(AppendResp {
        result: Some(result),
    })
}

fn success(current: Option<u64>, position: Option<u64>) -> append_resp::Success {
    use append_resp::success::{CurrentRevisionOption, PositionOption};
    append_resp::Success {
        current_revision_option: Some(match current {
            Some(r) => CurrentRevisionOption::CurrentRevision(r),
            None => CurrentRevisionOption::NoStream(()),
        }),
        position_option: Some(match position {
            Some(p) => PositionOption::Position(append_resp::Position {
                commit_position: p,
                prepare_position: p,
            }),
            None => PositionOption::NoPosition(()),
        }),
    }
}

fn wrong_expected_version(
    current: Option<u64>,
    expected: Expected,
) -> append_resp::WrongExpectedVersion {
    append_resp::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(match current {
            Some(r) => wev::CurrentRevisionOption2060::CurrentRevision2060(r),
            None => wev::CurrentRevisionOption2060::NoStream2060(()),
        }),
        expected_revision_option_20_6_0: match expected {
            Expected::Exact(r) => Some(wev::ExpectedRevisionOption2060::ExpectedRevision2060(r)),
            Expected::Any => Some(wev::ExpectedRevisionOption2060::Any2060(())),
            Expected::StreamExists => Some(wev::ExpectedRevisionOption2060::StreamExists2060(())),
            Expected::NoStream => None,
        },
        current_revision_option: Some(match current {
            Some(r) => wev::CurrentRevisionOption::CurrentRevision(r),
            None => wev::CurrentRevisionOption::CurrentNoStream(()),
        }),
        expected_revision_option: Some(match expected {
            Expected::Exact(r) => wev::ExpectedRevisionOption::ExpectedRevision(r),
            Expected::Any => wev::ExpectedRevisionOption::ExpectedAny(()),
            Expected::StreamExists => wev::ExpectedRevisionOption::ExpectedStreamExists(()),
            Expected::NoStream => wev::ExpectedRevisionOption::ExpectedNoStream(()),
        }),
    }
}
