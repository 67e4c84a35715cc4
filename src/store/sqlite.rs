//! The embedded backend: one SQLite file holding every stream in one `events` table.
//!
//! Shape and why:
//!
//! - **WAL, `synchronous=FULL`.** An append that returned `Ok` survives a power cut, and readers
//!   (reads, subscriptions) never block the writer nor each other.
//! - **The constraints are the invariants.** `UNIQUE(stream, revision)` makes two appends at one
//!   revision impossible even if the expected-revision check had a bug; `UNIQUE(id)` makes event
//!   ids global, so a repeated batch is found by id alone (and an id reused in another stream
//!   is refused as a partial duplicate). `position` (the rowid) is the global order, for a
//!   future all-streams read.
//! - **`BEGIN IMMEDIATE` per append.** The check of the expected revision, the idempotency check
//!   and the inserts run under the file's write lock, so several `SqliteStore`s or processes on
//!   one file serialize instead of racing; a batch is one transaction, so one fsync. Waiting for
//!   the lock is bounded by a busy timeout, after which the store is `Unavailable`.
//! - **Blocking work off the runtime.** rusqlite is synchronous: every query runs on
//!   `spawn_blocking`, on one writer connection behind a mutex or on a small pool of reader
//!   connections whose prepared statements stay cached between calls.
//! - **Subscriptions read pages and poll.** A subscription is a task that reads the stream in pages
//!   (a long history never sits in memory at once) and feeds a bounded channel. Appends through
//!   this `SqliteStore` wake it at once; appends by another process or another `SqliteStore` on
//!   the same file are seen by polling, since SQLite has no cross-process notification. The task
//!   ends when the subscription is dropped.
//!
//! Reads treat `ReadFrom::Start` as revision 0 and `ReadFrom::End` as past the last revision,
//! like EventStoreDB: forwards from the end reads nothing, backwards from the start reads the
//! first event.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rusqlite::types::{FromSqlError, Type};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
    StoreError, Subscription, SubscriptionItem,
};

/// Stored in `PRAGMA user_version`; bump it with a migration when the schema changes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE events (
    position   INTEGER PRIMARY KEY,
    stream     TEXT    NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 0),
    id         BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    event_type TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    metadata   BLOB    NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (stream, revision)
) STRICT;
";

/// How long a connection waits for another writer's lock before the store is `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Events per read while a subscription catches up or drains new appends.
const PAGE: usize = 1000;
/// How often an idle subscription looks for appends made by other writers on the file.
const POLL_INTERVAL: Duration = Duration::from_millis(150);
/// Items a subscription buffers ahead of its consumer.
const SUBSCRIPTION_BUFFER: usize = 256;
/// Reader connections kept open between reads; more are opened when reads overlap.
const IDLE_READERS: usize = 4;

const SELECT_FORWARDS: &str = "SELECT revision, id, event_type, data, metadata, created_ms
     FROM events WHERE stream = ?1 AND revision >= ?2 ORDER BY revision ASC LIMIT ?3";
const SELECT_BACKWARDS: &str = "SELECT revision, id, event_type, data, metadata, created_ms
     FROM events WHERE stream = ?1 AND revision <= ?2 ORDER BY revision DESC LIMIT ?3";

/// An event store in one SQLite file. Cheap to share behind an `Arc`; several instances and
/// several processes may open the same file.
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Bumped after each append through this instance, to wake its subscriptions.
    appended: watch::Sender<u64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, with its parent directories and schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shared = blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut writer = connect(&path)?;
            let mode: String = retry_while_busy(|| {
                writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            })
            .map_err(sql)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Backend(format!(
                    "{}: cannot use WAL, journal mode is {mode}",
                    path.display()
                )));
            }
            migrate(&mut writer, &path)?;
            Ok(Shared {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                appended: watch::channel(0).0,
            })
        })
        .await?;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    /// Appends in one `BEGIN IMMEDIATE` transaction. A batch whose ids are all stored, in this
    /// stream, in order and contiguous, is a repeat: it returns the original revisions with
    /// `written: false` whatever `expected` says. An empty batch only checks `expected` and
    /// returns `written: false` with both revisions at the stream's last revision (0 when the
    /// stream does not exist; ask `last_revision` to tell the two apart).
    #[tracing::instrument(skip(self, events), fields(expected_revision = %expected, events = events.len()))]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let shared = Arc::clone(&self.shared);
        let stream = stream.to_string();
        let result = blocking(move || {
            let mut writer = lock(&shared.writer);
            append_in_transaction(&mut writer, &stream, expected, &events)
        })
        .await?;
        if result.written {
            self.shared.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(result)
    }

    async fn read(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = match from {
            ReadFrom::Start => 0,
            ReadFrom::End => i64::MAX,
            ReadFrom::Revision(r) => clamp(r),
        };
        let shared = Arc::clone(&self.shared);
        let stream = stream.to_string();
        blocking(move || shared.with_reader(|c| read_page(c, &stream, direction, from, max))).await
    }

    async fn subscribe(
        &self,
        stream: &str,
        after: Option<u64>,
    ) -> Result<Subscription, StoreError> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let appended = self.shared.appended.subscribe();
        let next = after.map_or(0, |r| r.saturating_add(1));
        tokio::spawn(feed(
            Arc::clone(&self.shared),
            stream.to_string(),
            next,
            appended,
            tx,
        ));
        let items = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(items.boxed())
    }
}

/// The body of a subscription: history from `next`, `CaughtUp`, then new events as they come.
/// Ends when the consumer is gone, or after passing on the first error.
async fn feed(
    shared: Arc<Shared>,
    stream: String,
    mut next: u64,
    mut appended: watch::Receiver<u64>,
    tx: mpsc::Sender<Result<SubscriptionItem, StoreError>>,
) {
    if drain(&shared, &stream, &mut next, &mut appended, &tx)
        .await
        .is_err()
        || tx.send(Ok(SubscriptionItem::CaughtUp)).await.is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = appended.changed() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        if drain(&shared, &stream, &mut next, &mut appended, &tx)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Sends every stored event from `next` on, page by page. `Err(())` means the subscription is
/// over: the consumer is gone or an error was passed on.
async fn drain(
    shared: &Arc<Shared>,
    stream: &str,
    next: &mut u64,
    appended: &mut watch::Receiver<u64>,
    tx: &mpsc::Sender<Result<SubscriptionItem, StoreError>>,
) -> Result<(), ()> {
    loop {
        // Marked seen before reading, so an append that lands during the read wakes us again.
        appended.borrow_and_update();
        let (reader, owned, from) = (Arc::clone(shared), stream.to_string(), clamp(*next));
        let page = blocking(move || {
            reader.with_reader(|c| read_page(c, &owned, Direction::Forwards, from, PAGE))
        })
        .await;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return Err(());
            }
        };
        let full = page.len() == PAGE;
        for event in page {
            *next = event.revision.saturating_add(1);
            tx.send(Ok(SubscriptionItem::Event(event)))
                .await
                .map_err(|_| ())?;
        }
        if !full {
            return Ok(());
        }
    }
}

impl Shared {
    /// Runs `f` on an idle reader connection, opening one if none is idle.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.path)?;
                conn.pragma_update(None, "query_only", true).map_err(sql)?;
                conn
            }
        };
        let out = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        out
    }
}

fn append_in_transaction(
    conn: &mut Connection,
    stream: &str,
    expected: ExpectedRevision,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    if let Some(repeat) = find_repeat(&tx, stream, events)? {
        return Ok(repeat);
    }
    let last = last_revision(&tx, stream)?;
    let matches = match expected {
        ExpectedRevision::Any => true,
        ExpectedRevision::NoStream => last.is_none(),
        ExpectedRevision::StreamExists => last.is_some(),
        ExpectedRevision::Exact(r) => last == Some(r),
    };
    if !matches {
        return Err(StoreError::WrongExpectedRevision {
            stream: stream.to_string(),
            expected,
            actual: last,
        });
    }
    if events.is_empty() {
        let at = last.unwrap_or(0);
        return Ok(AppendResult {
            first_revision: at,
            last_revision: at,
            written: false,
        });
    }
    let first = last.map_or(0, |r| r + 1);
    // The store's clock, once per batch: the events of one append were written together.
    let created_ms = Utc::now().timestamp_millis();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (stream, revision, id, event_type, data, metadata, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql)?;
        for (revision, event) in (first..).zip(events) {
            let revision = i64::try_from(revision).map_err(|_| {
                StoreError::Backend(format!("stream {stream}: revision {revision} overflows"))
            })?;
            insert
                .execute(params![
                    stream,
                    revision,
                    event.id.as_bytes().as_slice(),
                    event.event_type,
                    event.data,
                    event.metadata,
                    created_ms,
                ])
                .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)?;
    Ok(AppendResult {
        first_revision: first,
        last_revision: first + (events.len() as u64 - 1),
        written: true,
    })
}

/// `Some` when the whole batch is already stored, as one run, in `stream`; `None` when none of
/// its ids is stored; `PartialDuplicate` otherwise (including an id stored in another stream, or
/// one id twice in the batch).
fn find_repeat(
    conn: &Connection,
    stream: &str,
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    let partial = |id: Uuid| StoreError::PartialDuplicate {
        stream: stream.to_string(),
        id,
    };
    let mut lookup = conn
        .prepare_cached("SELECT stream, revision FROM events WHERE id = ?1")
        .map_err(sql)?;
    let mut in_batch = HashSet::with_capacity(events.len());
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        if !in_batch.insert(event.id) {
            return Err(partial(event.id));
        }
        let found: Option<(String, i64)> = lookup
            .query_row([event.id.as_bytes().as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sql)?;
        stored.push((event.id, found));
    }
    let Some(first_stored) = stored.iter().find(|(_, found)| found.is_some()) else {
        return Ok(None);
    };
    let first_stored = first_stored.0;
    let Some((_, Some((_, first)))) = stored.first() else {
        return Err(partial(first_stored));
    };
    let one_run = stored
        .iter()
        .zip(*first..)
        .all(|((_, found), want)| matches!(found, Some((s, r)) if s == stream && *r == want));
    if !one_run {
        return Err(partial(first_stored));
    }
    let first = u64::try_from(*first).map_err(|_| partial(first_stored))?;
    Ok(Some(AppendResult {
        first_revision: first,
        last_revision: first + (events.len() as u64 - 1),
        written: false,
    }))
}

fn last_revision(conn: &Connection, stream: &str) -> Result<Option<u64>, StoreError> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(revision) FROM events WHERE stream = ?1")
        .and_then(|mut s| s.query_row([stream], |r| r.get(0)))
        .map_err(sql)?;
    last.map(|r| {
        u64::try_from(r)
            .map_err(|_| StoreError::Backend(format!("stream {stream}: negative revision {r}")))
    })
    .transpose()
}

fn read_page(
    conn: &Connection,
    stream: &str,
    direction: Direction,
    from: i64,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql_text = match direction {
        Direction::Forwards => SELECT_FORWARDS,
        Direction::Backwards => SELECT_BACKWARDS,
    };
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(sql_text).map_err(sql)?;
    let rows = statement
        .query_map(params![stream, from, limit], |row| recorded(stream, row))
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

fn recorded(stream: &str, row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
    let revision: i64 = row.get(0)?;
    let id = Uuid::from_slice(row.get_ref(1)?.as_blob()?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Blob, Box::new(e)))?;
    let created_ms: i64 = row.get(5)?;
    let created = DateTime::from_timestamp_millis(created_ms).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            Type::Integer,
            Box::new(FromSqlError::OutOfRange(created_ms)),
        )
    })?;
    Ok(RecordedEvent {
        stream: stream.to_string(),
        revision: u64::try_from(revision)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, revision))?,
        id,
        event_type: row.get(2)?,
        data: row.get(3)?,
        metadata: row.get(4)?,
        created,
    })
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(sql)?;
    conn.busy_handler(Some(wait_for_lock::<{ BUSY_TIMEOUT.as_secs() }>))
        .map_err(sql)?;
    stable_plans(&conn).map_err(sql)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    Ok(conn)
}

/// Creates the schema in a fresh file; refuses a file written by a newer dobrobot.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // A file already set up is only read: many short processes (`chat`) open it at once, and
    // need not queue for the write lock to learn that.
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA).map_err(sql)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sql)?;
        }
        SCHEMA_VERSION => {}
        other => {
            return Err(StoreError::Backend(format!(
                "{}: schema version {other}, this dobrobot knows {SCHEMA_VERSION}",
                path.display()
            )));
        }
    }
    tx.commit().map_err(sql)
}

/// Whether a connection that found the file locked (the `count`th time in a row) tries again,
/// after a pause; for `Connection::busy_handler`, within `SECONDS`.
///
/// SQLite's own handler (`busy_timeout`) pauses longer the longer it has waited, up to 100 ms
/// at a time. With many short writers on one file (`chat` processes beside `serve`), a waiter
/// asleep for 100 ms misses every moment the lock is free and is overtaken by newcomers: most
/// appends wait a millisecond, and a few wait close to a second. This one pauses a random
/// 0.25 to 1 ms each time, so the lock goes to whoever waits next, and none waits long.
pub(crate) fn wait_for_lock<const SECONDS: u64>(count: i32) -> bool {
    thread_local! {
        static WAITING_SINCE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = Instant::now();
    let since = WAITING_SINCE.with(|since| {
        if count == 0 || since.get().is_none() {
            since.set(Some(now));
        }
        since.get().unwrap_or(now)
    });
    if now.duration_since(since) >= Duration::from_secs(SECONDS) {
        return false;
    }
    std::thread::sleep(Duration::from_micros(fastrand::u64(250..=1000)));
    true
}

/// Keeps each cached statement's query plan when its parameters are bound again (SQLite's query
/// planner stability guarantee). Without it, a statement whose plan could depend on a bound
/// value (a range, a `LIMIT ?`) is compiled again at every execution: most of the cost of a
/// small keyset query. The plans here come from the indexes the queries name, not from the
/// values.
pub(crate) fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(drop)
}

/// Switching a fresh file to WAL can report busy at once instead of waiting, when another
/// process sets it up at the same moment; retry within the busy timeout.
fn retry_while_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A lock or an unopenable file is the store being unavailable; anything else is a failure.
fn sql(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// SQLite integers are signed; no stream gets near `i64::MAX` events.
fn clamp(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// A panic while a connection was locked leaves it usable: an open transaction rolls back when
/// dropped during the unwind.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}
