//! The EventStoreDB (KurrentDB) backend, on the official `kurrentdb` 1.x client (the crate
//! formerly published as `eventstore`; same gRPC protocol, servers EventStoreDB 20.6 and later).
//!
//! How the port maps onto EventStoreDB, and why:
//!
//! - **Connection strings pass through.** `esdb://`, `esdb+discover://`, `kurrentdb://` and
//!   `kurrentdb+discover://` URLs are parsed by `kurrentdb::ClientSettings`, so TLS, credentials,
//!   cluster seeds, DNS discovery and node preference are whatever the string says. Credentials
//!   never appear in our messages: the URL is shown with its password masked. The client installs
//!   rustls's aws-lc-rs crypto provider itself, once per process, before its first TLS set-up.
//! - **Events.** The event id passes through, so the server sees the ledger's ids. Data that is
//!   exactly one JSON value goes as `application/json`, byte for byte (a `RawValue`, never
//!   re-serialized, because the ledger hashes those bytes); any other bytes go as
//!   `application/octet-stream`. The port's metadata is the event's custom metadata, byte for
//!   byte. `created` is the server's clock, to the second (the client's resolution).
//! - **Expected revision and idempotence.** EventStoreDB recognises a repeated batch only at the
//!   position the expected revision points to (or by a recent-id cache for "any"), answers a
//!   repeat with the same success as a write, and writes a stored id again anywhere else. The port
//!   promises more: a batch already stored anywhere in the stream is a repeat with its original
//!   revisions, a batch partly stored is refused. So the store keeps, per stream it touches, the
//!   ids seen from the stream's start (filled by its own appends and by contiguous forward reads,
//!   such as the ledger's load), decides repeat / partial duplicate / conflict against them, and
//!   then appends with `StreamState::StreamRevision(last)` (or `NoStream`) whatever the caller's
//!   `ExpectedRevision` was (`Any`, `NoStream`, `StreamExists`, `Exact`): the server's check that
//!   the stream is still at `last` is what makes the id check atomic with the write. A
//!   wrong-expected-version answer means the stream moved: the store reads on and decides again,
//!   so a conflict reports the revision it just read (`None` for no stream).
//! - **Written or repeated.** A success answer cannot say whether the server wrote the batch or
//!   recognised another writer's batch with the same ids at those revisions. That matters only
//!   when the same ids can carry other bytes: name-based ids (UUID v3/v5, like the ledger's
//!   delivery ids, which two replicas derive from one redelivered Slack event with different
//!   clocks and hashes) or ids of no standard shape. For such a batch the store reads the
//!   revisions back: other bytes mean a repeat, `written: false`, so the ledger catches up
//!   instead of trusting its own draft. Time-based and random ids (v1, v4, v6, v7) are minted for
//!   one event, so the same id means the same bytes and a success is a write; this keeps the
//!   common append at one round trip. (A byte-identical batch sent by two writers is reported
//!   written to both: indistinguishable, and harmless.)
//! - **Reads.** Start, end or a revision, forwards or backwards, with a count; a missing stream
//!   reads as empty.
//! - **Subscriptions.** A catch-up subscription from the revision after `after`, confirmed before
//!   `subscribe` returns. `CaughtUp` comes once, after the event that was last when the
//!   subscription started (or the server's caught-up message, if that comes first), so it also
//!   works on servers that send none (before 23.10, and 23.10 for a stream that does not exist
//!   yet). Fell-behind notices and checkpoints are not the port's business. The client's own
//!   resubscription is off: any drop ends the subscription with one `Err`, and the caller
//!   subscribes again from the last revision it applied, which is exactly where the new
//!   subscription starts.
//! - **Availability.** Every call has one budget, [`BUDGET`] (under the ledger's 3 s), after which
//!   it is `Unavailable` and nothing more is sent. The client handle is rebuilt after
//!   connection-class errors and timeouts: a `kurrentdb` client whose first connection failed
//!   answers `ConnectionClosed` forever, and one whose node went away keeps using it. Appends and
//!   reads require the leader (a follower may lag behind the writes the id index is checked
//!   against); subscriptions follow whatever node the client picked. A not-leader answer makes
//!   the client reconnect to the leader it names; the call is tried again twice, then it is
//!   `Unavailable`. An append cut off by the budget may have been written: the next append to
//!   that stream reads first.
//!
//! The backend is split by concern: `url` (which URLs name a server, masking credentials),
//! `connection` (the client handle, the call budget, not-leader retries), `errors` (client
//! errors onto the port's), `index` (the per-stream id index behind idempotent appends),
//! `append`, `read`, `subscription`, `convert` (events to and from the client's types), and
//! `projections`, which installs the server-side projections (not part of the port).

mod append;
mod connection;
mod convert;
mod errors;
mod index;
pub mod projections;
mod read;
mod subscription;
mod url;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;
use futures::StreamExt;
use kurrentdb::{Client, ClientSettings};
use tokio::sync::Mutex;

use super::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
    StoreError, Subscription,
};
use connection::Connection;
use index::StreamIndex;

pub use connection::BUDGET;
pub(crate) use url::{is_esdb_url, redact};

/// An event store on an EventStoreDB server or cluster. Cheap to share behind an `Arc`; several
/// instances and processes may use one server.
pub struct EsdbStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// The store URL with its password masked, for messages.
    url: String,
    settings: ClientSettings,
    connection: RwLock<Connection>,
    /// The id index of each stream this store has read from the start or appended to.
    streams: StdMutex<HashMap<String, Arc<Mutex<StreamIndex>>>>,
}

impl EsdbStore {
    /// Parses the connection string and creates the client. Nothing is sent until the first
    /// call, so this succeeds while the server is down.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let shown = redact(url);
        let bad = |reason: String| StoreError::BadUrl {
            url: shown.clone(),
            reason,
        };
        // The message of a URL syntax error is the whole string, credentials included.
        let settings = url.parse::<ClientSettings>().map_err(|e| {
            bad(match e.error() {
                Some(syntax) => format!("not a connection string: {syntax}"),
                None => e.message().to_string(),
            })
        })?;
        let client = Client::new(settings.clone()).map_err(|e| bad(e.to_string()))?;
        Ok(EsdbStore {
            shared: Arc::new(Shared {
                url: shown,
                settings,
                connection: RwLock::new(Connection {
                    client,
                    generation: 0,
                }),
                streams: StdMutex::new(HashMap::new()),
            }),
        })
    }
}

#[async_trait]
impl EventStore for EsdbStore {
    /// Appends after deciding against the stream's id index; see the module doc. An empty batch
    /// reads the stream and only checks `expected`, returning `written: false` at the last
    /// revision (0 when the stream does not exist).
    #[tracing::instrument(skip(self, events), fields(expected_revision = %expected, events = events.len()))]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut in_batch = HashSet::with_capacity(events.len());
        if let Some(twice) = events.iter().find(|e| !in_batch.insert(e.id)) {
            return Err(StoreError::PartialDuplicate {
                stream: stream.to_string(),
                id: twice.id,
            });
        }
        let (shared, events) = (&self.shared, &events);
        shared
            .run("append", || shared.append_once(stream, expected, events))
            .await
    }

    async fn read(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let shared = &self.shared;
        let events = shared
            .run("read", || async move {
                let connection = shared.connection();
                shared
                    .read_once(&connection, stream, direction, from, max)
                    .await
            })
            .await?;
        let start = match from {
            ReadFrom::Start => Some(0),
            ReadFrom::Revision(r) => Some(r),
            ReadFrom::End => None,
        };
        if let (Direction::Forwards, Some(start)) = (direction, start) {
            shared.observe(stream, start, &events);
        }
        Ok(events)
    }

    async fn subscribe(
        &self,
        stream: &str,
        after: Option<u64>,
    ) -> Result<Subscription, StoreError> {
        let shared = &self.shared;
        let feed = shared
            .run("subscription", || shared.start_feed(stream, after))
            .await?;
        let items = futures::stream::unfold(feed, |mut feed| async move {
            feed.next().await.map(|item| (item, feed))
        });
        Ok(items.boxed())
    }
}

impl Shared {
    fn index(&self, stream: &str) -> Arc<Mutex<StreamIndex>> {
        let mut streams = lock(&self.streams);
        Arc::clone(streams.entry(stream.to_string()).or_default())
    }
}

fn lock<T>(mutex: &StdMutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
