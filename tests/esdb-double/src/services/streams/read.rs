//! `Streams.Read` with a count: a stream or `$all`, forwards or backwards, from the start, the
//! end or a revision (a position for `$all`). A missing stream is answered with a
//! `stream_not_found` message and status OK, as the server does; a tombstoned one with
//! `exception: stream-deleted`. When the client asks for compatibility level 1 or more (the Rust
//! client does), a stream read ends with `last_stream_position`. With the subscription option
//! instead of a count, the call becomes a catch-up subscription (`subscribe`).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::subscribe;
use crate::convert::{read_event, stream_identifier, stream_name};
use crate::errors;
use crate::proto::streams::read_req::options::{
    self, AllOptions, CountOption, FilterOption, StreamOption, StreamOptions,
};
use crate::proto::streams::read_resp::{self, StreamNotFound};
use crate::proto::streams::{ReadReq, ReadResp};
use crate::shared::Shared;
use crate::store::{Direction, ReadFrom, StreamRead};

/// Messages a read sends before waiting for the client to take them.
const BUFFER: usize = 256;

pub(super) fn read(
    shared: Arc<Shared>,
    request: ReadReq,
) -> Result<ReceiverStream<Result<ReadResp, Status>>, Status> {
    let options = request
        .options
        .ok_or_else(|| errors::invalid_argument("read options are required"))?;
    let direction = match options.read_direction {
        0 => Direction::Forwards,
        1 => Direction::Backwards,
        other => {
            return Err(errors::invalid_argument(format!(
                "'{other}' is not a valid ReadDirection"
            )));
        }
    };
    let uuid_as_string = matches!(
        options.uuid_option.and_then(|u| u.content),
        Some(options::uuid_option::Content::String(()))
    );
    let compatibility = options.control_option.map_or(0, |c| c.compatibility);
    let filtered = matches!(options.filter_option, Some(FilterOption::Filter(_)));

    match (options.stream_option, options.count_option) {
        (Some(StreamOption::Stream(stream)), Some(CountOption::Count(count))) => {
            let (name, from) = stream_start(stream)?;
            let read = shared.store.read_stream(&name, direction, from, count);
            Ok(send_all(stream_messages(
                read,
                &name,
                compatibility,
                uuid_as_string,
            )))
        }
        (Some(StreamOption::All(all)), Some(CountOption::Count(count))) => {
            if filtered {
                return Err(Status::unimplemented(
                    "the double does not filter $all reads",
                ));
            }
            let from = all_start(all)?;
            let events = shared.store.read_all(direction, from, count);
            Ok(send_all(
                events
                    .into_iter()
                    .map(move |e| Ok(read_event(&e, uuid_as_string))),
            ))
        }
        (Some(StreamOption::Stream(stream)), Some(CountOption::Subscription(_))) => {
            if direction == Direction::Backwards {
                return Err(errors::invalid_argument("subscriptions read forwards"));
            }
            let (name, from) = stream_start(stream)?;
            shared.subscribed(&name);
            Ok(subscribe::subscribe(shared, name, from, uuid_as_string))
        }
        (Some(StreamOption::All(_)), Some(CountOption::Subscription(_))) => Err(
            Status::unimplemented("the double does not serve subscriptions to $all"),
        ),
        _ => Err(errors::invalid_argument(
            "a stream option and a count option are required",
        )),
    }
}

fn stream_start(stream: StreamOptions) -> Result<(String, ReadFrom), Status> {
    use options::stream_options::RevisionOption;
    let name = stream_name(stream.stream_identifier)?;
    let from = match stream.revision_option {
        Some(RevisionOption::Revision(r)) => ReadFrom::At(r),
        Some(RevisionOption::Start(())) => ReadFrom::Start,
        Some(RevisionOption::End(())) => ReadFrom::End,
        None => return Err(errors::invalid_argument("a revision option is required")),
    };
    Ok((name, from))
}

fn all_start(all: AllOptions) -> Result<ReadFrom, Status> {
    use options::all_options::AllOption;
    match all.all_option {
        Some(AllOption::Position(p)) => Ok(ReadFrom::At(p.commit_position)),
        Some(AllOption::Start(())) => Ok(ReadFrom::Start),
        Some(AllOption::End(())) => Ok(ReadFrom::End),
        None => Err(errors::invalid_argument("a position option is required")),
    }
}

/// The messages answering a stream read, converted as they are sent.
fn stream_messages(
    read: StreamRead,
    name: &str,
    compatibility: u32,
    uuid_as_string: bool,
) -> Box<dyn Iterator<Item = Result<ReadResp, Status>> + Send> {
    match read {
        StreamRead::NotFound => Box::new(std::iter::once(Ok(ReadResp {
            content: Some(read_resp::Content::StreamNotFound(StreamNotFound {
                stream_identifier: Some(stream_identifier(name)),
            })),
        }))),
        StreamRead::Deleted => Box::new(std::iter::once(Err(errors::stream_deleted(name)))),
        StreamRead::Events {
            events,
            last_revision,
        } => {
            let last = (compatibility >= 1).then_some(Ok(ReadResp {
                content: Some(read_resp::Content::LastStreamPosition(last_revision)),
            }));
            Box::new(
                events
                    .into_iter()
                    .map(move |e| Ok(read_event(&e, uuid_as_string)))
                    .chain(last),
            )
        }
    }
}

/// Feeds a finished read to the client through a bounded channel, as the client takes it.
fn send_all(
    messages: impl Iterator<Item = Result<ReadResp, Status>> + Send + 'static,
) -> ReceiverStream<Result<ReadResp, Status>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        for message in messages {
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}
