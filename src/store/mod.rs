//! The event store port: append with an expected revision, read, subscribe.
//!
//! The port knows nothing of dobrobot's events: it stores typed blobs (an id, a type name, JSON
//! data and JSON metadata) in streams, with EventStoreDB's semantics so that the embedded SQLite
//! backend and EventStoreDB are interchangeable. The conformance suite in `tests/` holds every
//! backend to these semantics.

pub mod esdb;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use thiserror::Error;
use uuid::Uuid;

/// An event to append. `id` makes appends idempotent: an id already in the stream appends
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: Uuid,
    /// Not empty: EventStoreDB refuses an event without a type.
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
}

impl NewEvent {
    /// A record of one of dobrobot's own streams beside the ledger (the Slack front's, the
    /// sinks'): `data` as JSON, and metadata saying when and by which version it was written.
    pub fn record<T: serde::Serialize>(
        id: Uuid,
        event_type: &str,
        data: &T,
    ) -> Result<NewEvent, serde_json::Error> {
        let metadata = serde_json::json!({
            "recorded_at": Utc::now().to_rfc3339(),
            "app_version": env!("CARGO_PKG_VERSION"),
        });
        Ok(NewEvent {
            id,
            event_type: event_type.to_string(),
            data: serde_json::to_vec(data)?,
            metadata: metadata.to_string().into_bytes(),
        })
    }
}

/// An event as stored, at its revision (0-based, contiguous) in its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub stream: String,
    pub revision: u64,
    pub id: Uuid,
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
    /// When the store wrote it (the store's clock; the ledger's own time is in the metadata).
    pub created: DateTime<Utc>,
}

/// What the appender believes about the stream, checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRevision {
    Any,
    NoStream,
    StreamExists,
    /// The revision of the stream's last event.
    Exact(u64),
}

impl std::fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::StreamExists => f.write_str("stream exists"),
            ExpectedRevision::Exact(r) => write!(f, "{r}"),
        }
    }
}

/// The outcome of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Revision of the first and last event of the batch. For an idempotent repeat, the
    /// revisions where the events were first written.
    pub first_revision: u64,
    pub last_revision: u64,
    /// `false` when every event id was already stored and nothing was written.
    pub written: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forwards,
    Backwards,
}

/// Where a read starts (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Start,
    End,
    Revision(u64),
}

/// What a subscription yields: history first, then `CaughtUp` once, then live events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionItem {
    Event(RecordedEvent),
    CaughtUp,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The stream was not at the expected revision. `actual` is its last revision, `None` when
    /// the stream does not exist.
    #[error("stream {stream}: expected revision {expected}, but it is at {}", actual.map_or("no stream".to_string(), |r| r.to_string()))]
    WrongExpectedRevision {
        stream: String,
        expected: ExpectedRevision,
        actual: Option<u64>,
    },
    /// Some, not all, of a batch's event ids are already stored: the batch is neither new nor a
    /// repeat.
    #[error(
        "stream {stream}: event {id} is already stored, but the batch differs from the one stored"
    )]
    PartialDuplicate { stream: String, id: Uuid },
    /// The backend cannot be reached or did not answer in time: nothing was recorded.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("bad store URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("event store failure: {0}")]
    Backend(String),
}

pub type Subscription = BoxStream<'static, Result<SubscriptionItem, StoreError>>;

/// A stream read forwards page by page; see [`EventStore::read_pages`].
pub type Pages<'a> = BoxStream<'a, Result<Vec<RecordedEvent>, StoreError>>;

/// Events per page of [`EventStore::read_pages`]. One size for every reader of a whole stream:
/// large enough that a rebuild is not dominated by round trips, small enough that one page is
/// read well within a call's budget on EventStoreDB.
pub const READ_PAGE: usize = 1000;

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` if it is at `expected`, atomically: all or nothing.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Up to `max` events from `from` (inclusive) in `direction`. A stream that does not exist
    /// reads as empty.
    async fn read(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events after `after` (exclusive; `None` = from the start), then `CaughtUp`, then live
    /// events as they are appended, until the subscription is dropped.
    async fn subscribe(&self, stream: &str, after: Option<u64>)
    -> Result<Subscription, StoreError>;

    /// The stream read forwards from revision `from` (inclusive) to its end, in pages of
    /// [`READ_PAGE`] events; never an empty page. The end is the end when the last page was
    /// read: a page shorter than `READ_PAGE` is the last. Dropping the stream stops the reading,
    /// so a caller that has seen enough just stops polling.
    fn read_pages<'a>(&'a self, stream: &'a str, from: u64) -> Pages<'a> {
        futures::stream::try_unfold(Some(from), move |next| async move {
            let Some(from) = next else {
                return Ok(None);
            };
            let page = self
                .read(
                    stream,
                    Direction::Forwards,
                    ReadFrom::Revision(from),
                    READ_PAGE,
                )
                .await?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            let next = (page.len() >= READ_PAGE).then_some(last.revision + 1);
            Ok(Some((page, next)))
        })
        .boxed()
    }

    /// The last revision of the stream, `None` if it does not exist.
    async fn last_revision(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let last = self
            .read(stream, Direction::Backwards, ReadFrom::End, 1)
            .await?;
        Ok(last.first().map(|e| e.revision))
    }
}

/// Opens the backend a store URL names: `sqlite://path` (or a bare `sqlite:path`), or an
/// EventStoreDB connection string (`esdb://`, `esdb+discover://`, `kurrentdb://`,
/// `kurrentdb+discover://`; TLS and credentials are part of the string).
pub async fn open(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let store = sqlite::SqliteStore::open(path).await?;
        return Ok(Arc::new(store));
    }
    if esdb::is_esdb_url(url) {
        let store = esdb::EsdbStore::open(url).await?;
        return Ok(Arc::new(store));
    }
    Err(StoreError::BadUrl {
        url: esdb::redact(url),
        reason: "expected sqlite://PATH, or an EventStoreDB connection string \
                 (esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://)"
            .to_string(),
    })
}
