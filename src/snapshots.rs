//! Snapshots of the writer's state, so that a process starts from the last one instead of
//! folding the ledger from revision 0.
//!
//! Every `Options::snapshot_every` events the writer appends its state (with the revision, that
//! event's chain hash and time, and the delivery ids it knows) to a stream of its own beside the
//! ledger, `<ledger stream>-snapshots`, in the same store: SQLite and EventStoreDB alike. A
//! snapshot is a cache, never a source of truth:
//!
//! - on load, it is used only if the ledger's event at its revision carries its hash (the chain
//!   says the snapshot describes this ledger); otherwise it is ignored, logged, and the state is
//!   folded from the start (and snapshotted again);
//! - `verify` folds the whole ledger and checks every snapshot's state against the fold, and
//!   names the one that differs;
//! - the stream can be deleted at any time: the next start folds and writes one again.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;
use uuid::Uuid;

use crate::domain::State;
use crate::envelope;
use crate::store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, StoreError};

/// How often the writer snapshots its state, in events.
pub const EVERY: u64 = 1_000;

const EVENT_TYPE: &str = "WriterSnapshot";
/// Namespace of snapshot ids: one id per stream and revision, so two replicas snapshotting the
/// same revision store it once.
const NAMESPACE: Uuid = Uuid::from_u128(0x6d0b_70b0_7e1e_4a5e_9d1e_0f4b_d0b0_0002);
/// How many snapshots back from the last one before a point are tried, when the later ones do
/// not match the ledger.
const LOOK_BACK: usize = 64;

/// The stream that holds the snapshots of `ledger`.
pub fn stream_of(ledger: &str) -> String {
    format!("{ledger}-snapshots")
}

/// The writer's state right after `revision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterSnapshot {
    pub revision: u64,
    /// The chain hash of the event at `revision`.
    pub hash: String,
    /// When that event was recorded (the ledger's time).
    pub recorded_at: DateTime<Utc>,
    pub state: State,
    /// The deterministic (redelivery) event ids up to `revision`, sorted.
    pub deliveries: Vec<Uuid>,
}

impl WriterSnapshot {
    pub fn new(
        revision: u64,
        hash: String,
        recorded_at: DateTime<Utc>,
        state: State,
        deliveries: &HashSet<Uuid>,
    ) -> WriterSnapshot {
        let mut deliveries: Vec<Uuid> = deliveries.iter().copied().collect();
        deliveries.sort_unstable();
        WriterSnapshot {
            revision,
            hash,
            recorded_at,
            state,
            deliveries,
        }
    }
}

/// Appends `snapshot` to the snapshots of `ledger`.
pub async fn write(
    store: &Arc<dyn EventStore>,
    ledger: &str,
    snapshot: &WriterSnapshot,
) -> Result<(), StoreError> {
    let data = serde_json::to_vec(snapshot).map_err(|e| StoreError::Backend(e.to_string()))?;
    let id = Uuid::new_v5(
        &NAMESPACE,
        format!("{ledger}:{}", snapshot.revision).as_bytes(),
    );
    let event = NewEvent {
        id,
        event_type: EVENT_TYPE.to_string(),
        data,
        metadata: b"{}".to_vec(),
    };
    store
        .append(&stream_of(ledger), ExpectedRevision::Any, vec![event])
        .await?;
    Ok(())
}

/// Every stored snapshot of `ledger`, oldest first, with what is wrong with those that cannot
/// be read.
pub async fn all(
    store: &Arc<dyn EventStore>,
    ledger: &str,
) -> Result<Vec<(u64, Result<WriterSnapshot, String>)>, StoreError> {
    use futures::TryStreamExt;
    let stream = stream_of(ledger);
    let mut found = Vec::new();
    let mut pages = store.read_pages(&stream, 0);
    while let Some(page) = pages.try_next().await? {
        for event in page {
            found.push((
                event.revision,
                serde_json::from_slice::<WriterSnapshot>(&event.data).map_err(|e| e.to_string()),
            ));
        }
    }
    Ok(found)
}

/// The latest snapshot of `ledger` that the ledger's chain vouches for, at or before `upto`
/// (a revision) and `until` (a time) when given. A snapshot that cannot be read or does not
/// match the chain is skipped with a warning: it is never trusted.
///
/// The newest snapshot is read alone first: it is almost always the one. For a past point, the
/// snapshots are searched by halves (they are appended in the ledger's order), reading only each
/// probe's revision and time, so a question about last year reads a few snapshots, not all of
/// them; from the last one before the point, up to `LOOK_BACK` are tried back.
pub async fn latest(
    store: &Arc<dyn EventStore>,
    ledger: &str,
    upto: Option<u64>,
    until: Option<DateTime<Utc>>,
) -> Option<WriterSnapshot> {
    let stream = stream_of(ledger);
    let before = |revision: u64, recorded_at: DateTime<Utc>| {
        upto.is_none_or(|r| revision <= r) && until.is_none_or(|t| recorded_at <= t)
    };
    let newest = read(store, &stream, Direction::Backwards, ReadFrom::End, 1)
        .await?
        .into_iter()
        .next()?;
    let from = match serde_json::from_slice::<Head>(&newest.data) {
        Ok(head) if before(head.revision, head.recorded_at) => newest.revision,
        _ => {
            // The first snapshot past the point, by halves: `low` is at or before it.
            let (mut low, mut high) = (0, newest.revision);
            while low < high {
                let middle = low + (high - low) / 2;
                let found = read(
                    store,
                    &stream,
                    Direction::Forwards,
                    ReadFrom::Revision(middle),
                    1,
                )
                .await?;
                let head = found
                    .first()
                    .and_then(|e| serde_json::from_slice::<Head>(&e.data).ok());
                if head.is_some_and(|h| before(h.revision, h.recorded_at)) {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            low.checked_sub(1)?
        }
    };
    // The one found alone first, then those before it.
    let mut tried = 0;
    for count in [1, LOOK_BACK] {
        let recent = read(
            store,
            &stream,
            Direction::Backwards,
            ReadFrom::Revision(from),
            count,
        )
        .await?;
        let found = recent.len();
        for event in recent.into_iter().skip(tried) {
            let snapshot: WriterSnapshot = match serde_json::from_slice(&event.data) {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    warn!(%error, %stream, revision = event.revision, "a snapshot that cannot be read is ignored");
                    continue;
                }
            };
            if !before(snapshot.revision, snapshot.recorded_at) {
                continue;
            }
            match vouched(store, ledger, &snapshot).await {
                Ok(true) => return Some(snapshot),
                Ok(false) => {
                    warn!(%stream, revision = snapshot.revision, "a snapshot that does not match the ledger's hash chain is ignored");
                }
                Err(error) => {
                    warn!(%error, %stream, "cannot check a snapshot against the ledger; not using it");
                    return None;
                }
            }
        }
        if found < count {
            break;
        }
        tried = found;
    }
    None
}

/// Snapshots read from the store; `None`, said in the log, when the store cannot be read.
async fn read(
    store: &Arc<dyn EventStore>,
    stream: &str,
    direction: Direction,
    from: ReadFrom,
    count: usize,
) -> Option<Vec<crate::store::RecordedEvent>> {
    match store.read(stream, direction, from, count).await {
        Ok(events) => Some(events),
        Err(error) => {
            warn!(%error, %stream, "cannot read the snapshots; folding the ledger from the start");
            None
        }
    }
}

/// What a probe of the search reads of a snapshot (the state is skipped, not built).
#[derive(Deserialize)]
struct Head {
    revision: u64,
    recorded_at: DateTime<Utc>,
}

/// Whether the ledger's event at the snapshot's revision has the snapshot's hash and time.
async fn vouched(
    store: &Arc<dyn EventStore>,
    ledger: &str,
    snapshot: &WriterSnapshot,
) -> Result<bool, StoreError> {
    let events = store
        .read(
            ledger,
            Direction::Forwards,
            ReadFrom::Revision(snapshot.revision),
            1,
        )
        .await?;
    let Some(event) = events.first().filter(|e| e.revision == snapshot.revision) else {
        return Ok(false);
    };
    Ok(match envelope::decode(event) {
        Ok(recorded) => {
            recorded.metadata.hash == snapshot.hash
                && recorded.metadata.recorded_at == snapshot.recorded_at
        }
        Err(_) => false,
    })
}
