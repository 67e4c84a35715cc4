//! Catch-up subscriptions to a stream (`Streams.Read` with the subscription option), in the
//! server's order: the confirmation; the events after the checkpoint (after revision N when
//! subscribing from N, all of them from the start, none from the end); `caught_up` carrying the
//! last revision sent (absent while the stream is empty); then each event as it is appended. A
//! missing stream is not an error: the subscription waits for it. The call never ends with status
//! OK: it runs until the client goes away, or ends with an error (`stream-deleted`, or a dropped
//! subscription when a fault switch says so).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use uuid::Uuid;

use crate::convert::read_event;
use crate::errors;
use crate::faults::Ending;
use crate::proto::streams::ReadResp;
use crate::proto::streams::read_resp::{self, CaughtUp, SubscriptionConfirmation};
use crate::shared::Shared;
use crate::store::{Page, ReadFrom};

/// Events read from the store at a time while catching up.
const PAGE: usize = 512;
/// Messages buffered towards a slow client; the subscription waits when it is full.
const BUFFER: usize = 256;

type Sender = mpsc::Sender<Result<ReadResp, Status>>;

pub(super) fn subscribe(
    shared: Arc<Shared>,
    stream: String,
    from: ReadFrom,
    uuid_as_string: bool,
) -> ReceiverStream<Result<ReadResp, Status>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let ended = run(&shared, &stream, from, uuid_as_string, &tx).await;
        if let Some(status) = ended {
            let _ = tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx)
}

/// Runs one subscription; returns the error status to end it with, or `None` when the client is
/// gone (or the server is stopping and takes the connection away).
async fn run(
    shared: &Shared,
    stream: &str,
    from: ReadFrom,
    uuid_as_string: bool,
    tx: &Sender,
) -> Option<Status> {
    // Taken before anything is read, so that no change or drop signal can be missed.
    let mut changes = shared.store.changes();
    changes.borrow_and_update();
    let mut endings = shared.faults.endings();
    endings.borrow_and_update();

    let confirmation = read_resp::Content::Confirmation(SubscriptionConfirmation {
        subscription_id: Uuid::new_v4().to_string(),
    });
    send(tx, confirmation).await?;

    let mut checkpoint = match from {
        ReadFrom::Start => None,
        ReadFrom::At(revision) => Some(revision),
        ReadFrom::End => shared.store.last_revision(stream),
    };
    let mut caught_up = false;
    loop {
        if endings.has_changed().unwrap_or(true) {
            return ending(*endings.borrow_and_update());
        }
        match shared.store.page_after(stream, checkpoint, PAGE) {
            Page::Deleted => return Some(errors::stream_deleted(stream)),
            Page::Events(events) => {
                let full = events.len() == PAGE;
                for event in events {
                    checkpoint = Some(event.revision);
                    if tx
                        .send(Ok(read_event(&event, uuid_as_string)))
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
                if full {
                    continue;
                }
            }
        }
        if !caught_up {
            caught_up = true;
            let caught_up = read_resp::Content::CaughtUp(CaughtUp {
                timestamp: Some(SystemTime::now().into()),
                stream_revision: checkpoint.and_then(|c| i64::try_from(c).ok()),
                position: None,
            });
            send(tx, caught_up).await?;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return None },
            _ = endings.changed() => return ending(*endings.borrow_and_update()),
            () = tx.closed() => return None,
        }
    }
}

async fn send(tx: &Sender, content: read_resp::Content) -> Option<()> {
    tx.send(Ok(ReadResp {
        content: Some(content),
    }))
    .await
    .ok()
}

fn ending((_, why): (u64, Ending)) -> Option<Status> {
    match why {
        Ending::Dropped => Some(errors::subscription_dropped()),
        Ending::Stopping => None,
    }
}
