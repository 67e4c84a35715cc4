//! The read models, persisted: the audit history, the deployments, and the live state with the
//! waitlist, kept in a SQLite file with a checkpoint (the last revision applied and its hash).
//!
//! A process opens the file and catches up from the checkpoint, not from revision 0, so `serve`
//! is ready as soon as it has applied what was recorded while it was down, and a CLI question
//! reads only the events since the last one. A page is read from an index (by ticket, service,
//! actor, start or time) in revision order, so its cost grows with the page, not with the ledger.
//!
//! The file is a cache of the ledger, never a source of truth:
//! - a checkpoint whose hash is not the hash of the ledger's event at that revision (another
//!   ledger, a restored or tampered file), or that is not the revision the stored live state is
//!   as of, makes it rebuild from revision 0;
//! - `dobrobot projections rebuild` throws it away and folds the ledger again;
//! - `verify` compares every persisted model with a fresh fold and names the one that differs.
//!
//! The rules are not restated here: a deployment's record is folded by `Deployment::apply`, a
//! history entry is `HistoryEntry::of`, the live state is the domain's own fold. Several processes
//! may share the file (a `serve` and CLI calls on the same machine): each batch is applied in one
//! transaction that first reads the checkpoint, so an event is never applied twice.
//!
//! Where the file is: beside an embedded store (`<store file>.models`), or where `models` in
//! the config (`DOBROBOT_MODELS`) says, which is how a process on EventStoreDB keeps it too.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Deserialize;
use thiserror::Error;
use tracing::{info, warn};

use crate::domain::{Event, HistoryFilter, ServiceName, TicketKey};
use crate::envelope::{self, DecodeError, Recorded, Source};
use crate::follower::ReadModels;
use crate::projections::history::{entry_matches, is_whole_freeze, services_of};
use crate::projections::suspects::is_suspect;
use crate::projections::{Deployment, DeploymentOutcome, HistoryEntry, Live, Projection};
use crate::read::report::{self, Figures, ReportQuery, Restores};
use crate::read::{DeploymentFilter, Page, Stored};
use crate::store::sqlite::{stable_plans, wait_for_lock};
use crate::store::{Direction, EventStore, ReadFrom, StoreError};
use crate::telemetry::Progress;

/// The file's layout; a file of another version is rebuilt.
const VERSION: i64 = 5;
/// Rows read by a scan's first query (a default page and the row that says more follow), and
/// by any query at most: each next query reads twice as many as the one before.
const SCAN_FIRST: i64 = crate::read::DEFAULT_LIMIT as i64 + 1;
const SCAN: i64 = 1024;
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE history (
    revision INTEGER PRIMARY KEY,
    recorded_at INTEGER NOT NULL,
    ticket TEXT,
    actor TEXT NOT NULL,
    whole INTEGER NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX history_ticket ON history (ticket, revision) WHERE ticket IS NOT NULL;
CREATE INDEX history_actor ON history (actor, revision);
CREATE INDEX history_whole ON history (whole, revision);
CREATE INDEX history_time ON history (recorded_at, revision);
CREATE TABLE history_services (
    service TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (service, revision)
) WITHOUT ROWID;
CREATE TABLE deployments (
    revision INTEGER PRIMARY KEY,
    ticket TEXT NOT NULL,
    services TEXT NOT NULL,
    open INTEGER NOT NULL,
    started_revision INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    last_activity INTEGER NOT NULL,
    last_revision INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX deployments_last_activity ON deployments (last_activity);
CREATE INDEX deployments_ticket ON deployments (ticket, revision);
CREATE INDEX deployments_started_at ON deployments (started_at) WHERE started_at IS NOT NULL;
CREATE INDEX deployments_unfinished ON deployments (started_revision)
    WHERE started_revision IS NOT NULL AND finished_at IS NULL;
CREATE TABLE deployment_services (
    service TEXT NOT NULL,
    revision INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    PRIMARY KEY (service, revision)
) WITHOUT ROWID;
CREATE INDEX deployment_services_activity ON deployment_services (service, last_activity);
CREATE TABLE deployment_actors (
    actor TEXT NOT NULL,
    revision INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    PRIMARY KEY (actor, revision)
) WITHOUT ROWID;
CREATE INDEX deployment_actors_activity ON deployment_actors (actor, last_activity);
CREATE TABLE started_services (
    service TEXT NOT NULL,
    started_revision INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    PRIMARY KEY (service, started_revision)
) WITHOUT ROWID;
CREATE INDEX started_services_activity ON started_services (service, last_activity);
";

const TABLES: [&str; 7] = [
    "meta",
    "history",
    "history_services",
    "deployments",
    "deployment_services",
    "deployment_actors",
    "started_services",
];

#[derive(Debug, Error)]
pub enum ModelsError {
    #[error("the read models in {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the read models in {path}: a stored row does not read back: {source}")]
    Row {
        path: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The batch does not follow the checkpoint (the file was rebuilt or replaced meanwhile).
    #[error("the read models are at revision {at:?}; revision {got} does not follow it")]
    Gap { at: Option<u64>, got: u64 },
}

/// The last event applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub stream: String,
    pub revision: u64,
    pub hash: String,
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaughtUp {
    /// Events applied.
    pub applied: u64,
    /// It started from revision 0 because the checkpoint did not match the ledger.
    pub rebuilt: bool,
}

/// The persisted read models of one ledger.
pub struct StoredModels {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for StoredModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredModels")
            .field("path", &self.path)
            .finish()
    }
}

impl StoredModels {
    /// Opens (or creates) the file; one of another layout is emptied, to be rebuilt.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<StoredModels>, ModelsError> {
        let path = path.as_ref().to_path_buf();
        let models = StoredModels {
            writer: Mutex::new(Connection::open(&path).map_err(sql_at(&path))?),
            path,
            readers: Mutex::new(Vec::new()),
        };
        {
            let mut conn = models.lock_writer();
            conn.busy_handler(Some(wait_for_lock::<{ BUSY_TIMEOUT.as_secs() }>))
                .map_err(models.sql())?;
            stable_plans(&conn).map_err(models.sql())?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(models.sql())?;
            // Many short processes open the file at once (`chat`): a file already set up is
            // only read here, so they do not queue for its write lock.
            let version = |conn: &Connection| {
                conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            };
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .map_err(models.sql())?;
            if !mode.eq_ignore_ascii_case("wal") {
                conn.pragma_update(None, "journal_mode", "WAL")
                    .map_err(models.sql())?;
            }
            if version(&conn).map_err(models.sql())? != VERSION {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(models.sql())?;
                if version(&tx).map_err(models.sql())? != VERSION {
                    for table in TABLES {
                        tx.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))
                            .map_err(models.sql())?;
                    }
                    tx.execute_batch(SCHEMA).map_err(models.sql())?;
                    tx.pragma_update(None, "user_version", VERSION)
                        .map_err(models.sql())?;
                }
                tx.commit().map_err(models.sql())?;
            }
        }
        Ok(Arc::new(models))
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> ModelsError + '_ {
        sql_at(&self.path)
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The checkpoint, `None` before the first event.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, ModelsError> {
        checkpoint(&self.lock_writer()).map_err(self.sql())
    }

    /// The live state and the waitlist as of the checkpoint.
    pub fn held(&self) -> Result<ReadModels, ModelsError> {
        let mut conn = self.lock_writer();
        let read = conn.transaction().map_err(self.sql())?;
        load_held(&read, &self.path)
    }

    /// The revision the stored live state and waitlist are as of: the checkpoint's, unless the
    /// file was edited.
    fn held_revision(&self) -> Result<Option<u64>, ModelsError> {
        let conn = self.lock_writer();
        let revision = meta(&conn, "state_revision").map_err(self.sql())?;
        Ok(revision.and_then(|r| r.parse().ok()))
    }

    /// Empties every model, to be folded again from revision 0.
    pub fn clear(&self) -> Result<(), ModelsError> {
        let mut conn = self.lock_writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        for table in TABLES {
            tx.execute(&format!("DELETE FROM {table}"), [])
                .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())
    }

    /// Brings the models up to the end of `stream`, from the checkpoint when the ledger vouches
    /// for it (its event at the checkpoint's revision has the checkpoint's hash), else from
    /// revision 0. Logs progress every few seconds of a long build and a summary at the end.
    pub async fn catch_up(
        self: &Arc<Self>,
        store: &Arc<dyn EventStore>,
        stream: &str,
    ) -> Result<CaughtUp, ModelsError> {
        let started = Instant::now();
        let mut rebuilt = false;
        let from = match self.checkpoint()? {
            None => 0,
            Some(checkpoint) => {
                let whole = self.held_revision()? == Some(checkpoint.revision);
                if whole && vouched(store, stream, &checkpoint).await? {
                    checkpoint.revision + 1
                } else {
                    warn!(
                        models = %self.path.display(),
                        %stream,
                        revision = checkpoint.revision,
                        "the read models' checkpoint is not in the ledger; rebuilding them"
                    );
                    self.clear()?;
                    rebuilt = true;
                    0
                }
            }
        };
        let end = store.last_revision(stream).await?;
        let Some(end) = end.filter(|&end| end >= from) else {
            return Ok(CaughtUp {
                applied: 0,
                rebuilt,
            });
        };
        let mut progress = Progress::new("applied", from, end + 1);
        let mut applied = 0u64;
        let mut pages = store.read_pages(stream, from);
        while let Some(page) = pages.try_next().await? {
            let events = page
                .iter()
                .map(envelope::decode)
                .collect::<Result<Vec<_>, _>>()?;
            let next = events.last().map_or(from, |e| e.revision + 1);
            applied += events.len() as u64;
            let models = self.clone();
            let stream = stream.to_string();
            tokio::task::spawn_blocking(move || models.apply(&stream, &events))
                .await
                .expect("applying to the read models panicked")?;
            if end - from >= 10_000 {
                progress.report(next);
            }
        }
        if applied > 0 {
            info!(
                models = %self.path.display(),
                %stream,
                from,
                applied,
                rebuilt,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "read models caught up"
            );
        }
        Ok(CaughtUp { applied, rebuilt })
    }

    /// Applies a batch of consecutive events in one transaction and returns the live state and
    /// waitlist after it. Events the checkpoint already covers are skipped (another process
    /// applied them); a batch that does not follow the checkpoint is a `Gap`.
    pub fn apply(&self, stream: &str, events: &[Recorded]) -> Result<ReadModels, ModelsError> {
        self.apply_from(stream, events, None)
    }

    /// `apply`, given the live state and waitlist as of the checkpoint when the caller holds
    /// them (the follower does), so they are not read back from the file; they are used only if
    /// they are of the checkpoint's revision.
    pub fn apply_from(
        &self,
        stream: &str,
        events: &[Recorded],
        held: Option<ReadModels>,
    ) -> Result<ReadModels, ModelsError> {
        let mut conn = self.lock_writer();
        // A look first, without the write lock: what another process (a `serve` beside this
        // `chat`) applied already needs nothing more.
        {
            let read = conn.transaction().map_err(self.sql())?;
            let applied = checkpoint(&read).map_err(self.sql())?;
            if let (Some(at), Some(last)) = (&applied, events.last())
                && last.revision <= at.revision
            {
                return load_held(&read, &self.path);
            }
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let at = checkpoint(&tx).map_err(self.sql())?;
        let next = at.as_ref().map_or(0, |c| c.revision + 1);
        let events: Vec<&Recorded> = events.iter().filter(|e| e.revision >= next).collect();
        if let Some(first) = events.first()
            && first.revision != next
        {
            return Err(ModelsError::Gap {
                at: at.map(|c| c.revision),
                got: first.revision,
            });
        }
        let mut held = match held {
            Some(held) if held.live.revision == at.as_ref().map(|c| c.revision) => held,
            _ => load_held(&tx, &self.path)?,
        };
        let Some(last) = events.last() else {
            return Ok(held);
        };
        let mut longest = meta(&tx, "longest_ms")
            .map_err(self.sql())?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        for recorded in &events {
            apply_one(&tx, recorded, &mut longest).map_err(|e| match e {
                ApplyError::Sql(source) => ModelsError::Sql {
                    path: self.path.display().to_string(),
                    source,
                },
                ApplyError::Row(source) => ModelsError::Row {
                    path: self.path.display().to_string(),
                    source,
                },
            })?;
            held.live.apply(recorded);
            Projection::apply(&mut held.waitlist, recorded);
        }
        for (key, value) in [
            ("stream", stream.to_string()),
            ("revision", last.revision.to_string()),
            ("hash", last.metadata.hash.clone()),
            ("state", to_json(&held.live.state)),
            ("state_revision", last.revision.to_string()),
            ("waitlist", to_json(&held.waitlist)),
            ("longest_ms", longest.to_string()),
        ] {
            set_meta(&tx, key, &value).map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())?;
        Ok(held)
    }

    /// Answers with a read-only connection of its own (a pool of them), so that questions do
    /// not wait for the writer.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&Reader) -> Result<R, ModelsError>,
    ) -> Result<R, ModelsError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let mut conn = Connection::open(&self.path).map_err(self.sql())?;
                conn.busy_handler(Some(wait_for_lock::<{ BUSY_TIMEOUT.as_secs() }>))
                    .map_err(self.sql())?;
                stable_plans(&conn).map_err(self.sql())?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(self.sql())?;
                conn
            }
        };
        let reader = Reader {
            conn,
            path: self.path.display().to_string(),
        };
        let answer = f(&reader);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reader.conn);
        answer
    }
}

/// A blob kept in `meta` (the live state, the waitlist).
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("the live state and waitlist serialize")
}

fn sql_at(path: &Path) -> impl Fn(rusqlite::Error) -> ModelsError + '_ {
    move |source| ModelsError::Sql {
        path: path.display().to_string(),
        source,
    }
}

/// Whether the ledger's event at the checkpoint's revision has the checkpoint's hash.
async fn vouched(
    store: &Arc<dyn EventStore>,
    stream: &str,
    checkpoint: &Checkpoint,
) -> Result<bool, ModelsError> {
    if checkpoint.stream != stream {
        return Ok(false);
    }
    let found = store
        .read(
            stream,
            Direction::Forwards,
            ReadFrom::Revision(checkpoint.revision),
            1,
        )
        .await?;
    Ok(match found.first() {
        Some(raw) if raw.revision == checkpoint.revision => {
            envelope::decode(raw)?.metadata.hash == checkpoint.hash
        }
        _ => false,
    })
}

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(drop)
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    let (Some(stream), Some(revision), Some(hash)) = (
        meta(conn, "stream")?,
        meta(conn, "revision")?,
        meta(conn, "hash")?,
    ) else {
        return Ok(None);
    };
    Ok(revision.parse().ok().map(|revision| Checkpoint {
        stream,
        revision,
        hash,
    }))
}

fn load_held(conn: &Connection, path: &Path) -> Result<ReadModels, ModelsError> {
    let row = |source| ModelsError::Row {
        path: path.display().to_string(),
        source,
    };
    let Some(at) = checkpoint(conn).map_err(sql_at(path))? else {
        return Ok(ReadModels::default());
    };
    let state = meta(conn, "state")
        .map_err(sql_at(path))?
        .unwrap_or_default();
    let waitlist = meta(conn, "waitlist")
        .map_err(sql_at(path))?
        .unwrap_or_default();
    Ok(ReadModels {
        live: Live {
            state: serde_json::from_str(&state).map_err(row)?,
            revision: Some(at.revision),
        },
        waitlist: serde_json::from_str(&waitlist).map_err(row)?,
    })
}

enum ApplyError {
    Sql(rusqlite::Error),
    Row(serde_json::Error),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Sql(e)
    }
}

impl From<serde_json::Error> for ApplyError {
    fn from(e: serde_json::Error) -> Self {
        ApplyError::Row(e)
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The first whole millisecond at or after `at`: the ledger's times are whole milliseconds, so
/// a time `>= at` is one `>= millis_up(at)`.
fn millis_up(at: DateTime<Utc>) -> i64 {
    let whole = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        whole
    } else {
        whole + 1
    }
}

/// One event into the deployments and the history.
fn apply_one(conn: &Connection, recorded: &Recorded, longest: &mut i64) -> Result<(), ApplyError> {
    let (revision, at, event) = (
        recorded.revision,
        recorded.metadata.recorded_at,
        &recorded.event,
    );
    if let Some(ticket) = event.ticket() {
        let open: Option<String> = conn
            .prepare_cached(
                "SELECT record FROM deployments WHERE ticket = ?1 AND open = 1
                 ORDER BY revision DESC LIMIT 1",
            )?
            .query_row([ticket.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(record) = open {
            let mut d: Deployment = serde_json::from_str(&record)?;
            // A batch applied again (a checkpoint moved back) does not apply an event twice.
            if revision > d.last_revision {
                let open = d.apply(revision, at, event);
                write_deployment(conn, &d, open)?;
                if let (Some(s), Some(f)) = (d.started_at, d.finished_at) {
                    *longest = (*longest).max(millis(f) - millis(s));
                }
            }
        }
    }
    if let Some(d) = Deployment::requested(revision, at, event) {
        write_deployment(conn, &d, true)?;
    }
    let services = services_of(event, |ticket| latest_request_services(conn, ticket));
    for service in &services {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO history_services (service, revision) VALUES (?1, ?2)",
        )?
        .execute(params![service.as_str(), revision as i64])?;
    }
    let entry = HistoryEntry::of(recorded, services);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO history (revision, recorded_at, ticket, actor, whole, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        revision as i64,
        millis(at),
        event.ticket().map(TicketKey::as_str),
        event.actor().as_str(),
        is_whole_freeze(event),
        serde_json::to_string(&entry)?,
    ])?;
    Ok(())
}

/// The services of the ticket's latest request.
fn latest_request_services(conn: &Connection, ticket: &TicketKey) -> Option<Vec<ServiceName>> {
    let services: String = conn
        .prepare_cached(
            "SELECT services FROM deployments WHERE ticket = ?1 ORDER BY revision DESC LIMIT 1",
        )
        .ok()?
        .query_row([ticket.as_str()], |r| r.get(0))
        .ok()?;
    serde_json::from_str(&services).ok()
}

/// A deployment record, and its rows in the indexes by service, by start and by actor, each
/// with the record's latest activity (so that a question "since a time" about one service or
/// one person reads only that one's recent records).
fn write_deployment(conn: &Connection, d: &Deployment, open: bool) -> Result<(), ApplyError> {
    conn.prepare_cached(
        "INSERT INTO deployments (revision, ticket, services, open, started_revision,
             started_at, finished_at, last_activity, last_revision, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (revision) DO UPDATE SET open = excluded.open,
             started_revision = excluded.started_revision, started_at = excluded.started_at,
             finished_at = excluded.finished_at, last_activity = excluded.last_activity,
             last_revision = excluded.last_revision, record = excluded.record",
    )?
    .execute(params![
        d.revision as i64,
        d.ticket.as_str(),
        serde_json::to_string(&d.services)?,
        open,
        d.started_revision.map(|r| r as i64),
        d.started_at.map(millis),
        d.finished_at.map(millis),
        millis(d.last_activity()),
        d.last_revision as i64,
        serde_json::to_string(d)?,
    ])?;
    let actors = [
        Some(&d.requester),
        d.approver.as_ref(),
        d.admin.as_ref(),
        d.started_by.as_ref(),
        d.ended_by.as_ref(),
    ];
    let (revision, last_activity) = (d.revision as i64, millis(d.last_activity()));
    for actor in actors.into_iter().flatten() {
        conn.prepare_cached(
            "INSERT INTO deployment_actors (actor, revision, last_activity) VALUES (?1, ?2, ?3)
             ON CONFLICT (actor, revision) DO UPDATE SET last_activity = excluded.last_activity",
        )?
        .execute(params![actor.as_str(), revision, last_activity])?;
    }
    for service in &d.services {
        conn.prepare_cached(
            "INSERT INTO deployment_services (service, revision, last_activity)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (service, revision) DO UPDATE SET last_activity = excluded.last_activity",
        )?
        .execute(params![service.as_str(), revision, last_activity])?;
        if let Some(started) = d.started_revision {
            conn.prepare_cached(
                "INSERT INTO started_services (service, started_revision, revision, last_activity)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service, started_revision)
                 DO UPDATE SET last_activity = excluded.last_activity",
            )?
            .execute(params![
                service.as_str(),
                started as i64,
                revision,
                last_activity
            ])?;
        }
    }
    Ok(())
}

/// A history entry as stored: its serde form, less the type name (taken from the event).
#[derive(Deserialize)]
struct StoredEntry {
    revision: u64,
    recorded_at: DateTime<Utc>,
    ticket: Option<TicketKey>,
    services: Vec<ServiceName>,
    actor: String,
    actor_name: String,
    source: Source,
    command: String,
    hash: String,
    event: Event,
}

impl From<StoredEntry> for HistoryEntry {
    fn from(e: StoredEntry) -> Self {
        HistoryEntry {
            revision: e.revision,
            recorded_at: e.recorded_at,
            event_type: e.event.type_name(),
            ticket: e.ticket,
            services: e.services,
            actor: e.actor,
            actor_name: e.actor_name,
            source: e.source,
            command: e.command,
            hash: e.hash,
            event: e.event,
        }
    }
}

/// Rows of an ordered query read a few hundred at a time from a bound on (the cursor), so that
/// a page reads little more than its rows. The query takes `?1` a key, `?2` the exclusive
/// bound to read from, `?3` the last revision included (a question as of a point), `?4` how
/// many rows and `?5` a time (milliseconds) when it filters by one, and returns (the ordering
/// value, the row's JSON).
struct Scan<'c> {
    conn: &'c Connection,
    sql: &'static str,
    key: String,
    from: i64,
    upto: i64,
    time: i64,
    /// Rows the next query reads.
    batch: i64,
    buffer: VecDeque<(i64, String)>,
    done: bool,
}

impl<'c> Scan<'c> {
    fn new(conn: &'c Connection, sql: &'static str, key: &str, from: i64, upto: i64) -> Self {
        Scan {
            conn,
            sql,
            key: key.to_string(),
            from,
            upto,
            time: 0,
            batch: SCAN_FIRST,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The same scan with `?5` set.
    fn at(self, time: i64) -> Self {
        Scan { time, ..self }
    }
}

impl Iterator for Scan<'_> {
    type Item = rusqlite::Result<(i64, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            let read = self.conn.prepare_cached(self.sql).and_then(|mut stmt| {
                let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
                if stmt.parameter_count() == 5 {
                    stmt.query_map(
                        params![self.key, self.from, self.upto, self.batch, self.time],
                        row,
                    )?
                    .collect::<rusqlite::Result<VecDeque<(i64, String)>>>()
                } else {
                    stmt.query_map(params![self.key, self.from, self.upto, self.batch], row)?
                        .collect::<rusqlite::Result<VecDeque<(i64, String)>>>()
                }
            });
            match read {
                Ok(rows) => {
                    self.done = (rows.len() as i64) < self.batch;
                    self.batch = (self.batch * 2).min(SCAN);
                    if let Some((last, _)) = rows.back() {
                        self.from = *last;
                    }
                    self.buffer = rows;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// Two scans in the same order merged into one.
fn merge<'a>(
    mut one: impl Iterator<Item = rusqlite::Result<(i64, String)>> + 'a,
    mut two: impl Iterator<Item = rusqlite::Result<(i64, String)>> + 'a,
    descending: bool,
) -> impl Iterator<Item = rusqlite::Result<(i64, String)>> + 'a {
    let (mut a, mut b) = (one.next(), two.next());
    std::iter::from_fn(move || {
        let take_a = match (&a, &b) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(Err(_)), _) => true,
            (_, Some(Err(_))) => false,
            (Some(Ok((x, _))), Some(Ok((y, _)))) => (x <= y) != descending,
        };
        if take_a {
            std::mem::replace(&mut a, one.next())
        } else {
            std::mem::replace(&mut b, two.next())
        }
    })
}

const NO_CURSOR: i64 = -1;

fn bound(revision: Option<u64>) -> i64 {
    revision.map_or(i64::MAX, |r| i64::try_from(r).unwrap_or(i64::MAX))
}

/// The first `limit` rows (and one more, to know there are more) that parse and match.
fn page_of<T>(
    rows: impl Iterator<Item = rusqlite::Result<(i64, String)>>,
    limit: usize,
    mut parse: impl FnMut(&str) -> Result<T, ModelsError>,
    keep: impl Fn(&T) -> Result<bool, ModelsError>,
    path: &str,
) -> Result<Page<T>, ModelsError> {
    // Each with its scan's key, the page's cursor.
    let mut items = Vec::new();
    for row in rows {
        let (key, json) = row.map_err(|source| ModelsError::Sql {
            path: path.to_string(),
            source,
        })?;
        let item = parse(&json)?;
        if keep(&item)? {
            items.push((key, item));
            if items.len() > limit {
                break;
            }
        }
    }
    let page = Page::of(items, limit, |(key, _)| u64::try_from(*key).unwrap_or(0));
    Ok(Page {
        items: page.items.into_iter().map(|(_, item)| item).collect(),
        next_cursor: page.next_cursor,
    })
}

/// Questions asked of the persisted models, on a read-only connection.
pub struct Reader {
    conn: Connection,
    path: String,
}

impl Reader {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> ModelsError + '_ {
        |source| ModelsError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn row<T: serde::de::DeserializeOwned>(&self, json: &str) -> Result<T, ModelsError> {
        serde_json::from_str(json).map_err(|source| ModelsError::Row {
            path: self.path.clone(),
            source,
        })
    }

    /// The checkpoint the answers are as of.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, ModelsError> {
        checkpoint(&self.conn).map_err(self.sql())
    }

    /// The first revision recorded at or after `at`, if any was.
    fn first_at_or_after(&self, at: DateTime<Utc>) -> Result<Option<i64>, ModelsError> {
        self.conn
            .prepare_cached(
                "SELECT revision FROM history WHERE recorded_at >= ?1
                 ORDER BY recorded_at, revision LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row([millis_up(at)], |r| r.get(0)).optional())
            .map_err(self.sql())
    }

    /// The last revision recorded at or before `at`: the ledger's prefix up to the first event
    /// recorded after it. `None` when nothing was.
    pub fn revision_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, ModelsError> {
        let after: Option<i64> = self
            .conn
            .query_row(
                "SELECT revision FROM history WHERE recorded_at > ?1
                 ORDER BY recorded_at, revision LIMIT 1",
                [millis(at)],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(match after {
            Some(first_after) => u64::try_from(first_after - 1).ok(),
            None => self.checkpoint()?.map(|c| c.revision),
        })
    }

    /// The history rows that may match `filter`, from the narrowest index it names, oldest
    /// first after `from` (or newest first before it), up to `upto`.
    fn history_rows<'c>(
        &'c self,
        filter: &HistoryFilter,
        from: i64,
        upto: i64,
        newest_first: bool,
    ) -> Box<dyn Iterator<Item = rusqlite::Result<(i64, String)>> + 'c> {
        // (ascending, descending) of each index.
        const TICKET: [&str; 2] = [
            "SELECT revision, entry FROM history WHERE ticket = ?1 AND revision > ?2
             AND revision <= ?3 ORDER BY ticket, revision LIMIT ?4",
            "SELECT revision, entry FROM history WHERE ticket = ?1 AND revision < ?2
             AND revision <= ?3 ORDER BY ticket DESC, revision DESC LIMIT ?4",
        ];
        const ACTOR: [&str; 2] = [
            "SELECT revision, entry FROM history WHERE actor = ?1 AND revision > ?2
             AND revision <= ?3 ORDER BY actor, revision LIMIT ?4",
            "SELECT revision, entry FROM history WHERE actor = ?1 AND revision < ?2
             AND revision <= ?3 ORDER BY actor DESC, revision DESC LIMIT ?4",
        ];
        const SERVICE: [&str; 2] = [
            "SELECT h.revision, h.entry FROM history_services s
             JOIN history h ON h.revision = s.revision
             WHERE s.service = ?1 AND s.revision > ?2 AND s.revision <= ?3
             ORDER BY s.service, s.revision LIMIT ?4",
            "SELECT h.revision, h.entry FROM history_services s
             JOIN history h ON h.revision = s.revision
             WHERE s.service = ?1 AND s.revision < ?2 AND s.revision <= ?3
             ORDER BY s.service DESC, s.revision DESC LIMIT ?4",
        ];
        const WHOLE: [&str; 2] = [
            "SELECT revision, entry FROM history WHERE whole = 1 AND ?1 = ?1
             AND revision > ?2 AND revision <= ?3 ORDER BY whole, revision LIMIT ?4",
            "SELECT revision, entry FROM history WHERE whole = 1 AND ?1 = ?1
             AND revision < ?2 AND revision <= ?3 ORDER BY whole DESC, revision DESC LIMIT ?4",
        ];
        const ALL: [&str; 2] = [
            "SELECT revision, entry FROM history WHERE ?1 = ?1 AND revision > ?2
             AND revision <= ?3 ORDER BY revision LIMIT ?4",
            "SELECT revision, entry FROM history WHERE ?1 = ?1 AND revision < ?2
             AND revision <= ?3 ORDER BY revision DESC LIMIT ?4",
        ];
        let d = usize::from(newest_first);
        let c = &self.conn;
        if let Some(ticket) = &filter.ticket {
            Box::new(Scan::new(c, TICKET[d], ticket.as_str(), from, upto))
        } else if let Some(actor) = &filter.actor {
            Box::new(Scan::new(c, ACTOR[d], actor.as_str(), from, upto))
        } else if let Some(service) = &filter.service {
            Box::new(merge(
                Scan::new(c, SERVICE[d], service.as_str(), from, upto),
                Scan::new(c, WHOLE[d], "", from, upto),
                newest_first,
            ))
        } else {
            Box::new(Scan::new(c, ALL[d], "", from, upto))
        }
    }

    /// The audit history that matches, oldest first, after the cursor and up to `upto`.
    pub fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<u64>,
        upto: Option<u64>,
        limit: usize,
    ) -> Result<Page<HistoryEntry>, ModelsError> {
        let (mut from, mut upto) = (after.map_or(NO_CURSOR, |a| bound(Some(a))), bound(upto));
        // The ledger's time never goes back (the writer sees to it): the entries at or after
        // `since` are those from the first recorded then on, and those at or before `until` end
        // with the last recorded by then. A question with a time reads only that stretch.
        if let Some(since) = filter.since {
            match self.first_at_or_after(since)? {
                Some(first) => from = from.max(first - 1),
                None => return Ok(Page::whole(Vec::new())),
            }
        }
        if let Some(until) = filter.until {
            match self.revision_at(until)? {
                Some(last) => upto = upto.min(bound(Some(last))),
                None => return Ok(Page::whole(Vec::new())),
            }
        }
        page_of(
            self.history_rows(filter, from, upto, false),
            limit,
            |json| Ok(self.row::<StoredEntry>(json)?.into()),
            |entry| Ok(entry_matches(filter, entry)),
            &self.path,
        )
    }

    /// How many entries match, and the last `count` of them, oldest first (chat's `history`).
    pub fn history_tail(
        &self,
        filter: &HistoryFilter,
        count: usize,
    ) -> Result<(usize, Vec<HistoryEntry>), ModelsError> {
        // Every row of the index a filter of only a ticket, actor or service reads matches it:
        // once enough are shown, the rest are only counted.
        let exact = filter.event_type.is_none() && filter.since.is_none() && filter.until.is_none();
        let mut total = 0;
        let mut shown = Vec::new();
        for row in self.history_rows(filter, i64::MAX, i64::MAX, true) {
            let (_, json) = row.map_err(self.sql())?;
            if exact && shown.len() == count {
                total += 1;
                continue;
            }
            let entry: HistoryEntry = self.row::<StoredEntry>(&json)?.into();
            if entry_matches(filter, &entry) {
                total += 1;
                if shown.len() < count {
                    shown.push(entry);
                }
            }
        }
        shown.reverse();
        Ok((total, shown))
    }

    /// Every release record that matches, as of `upto`, in request order after the cursor.
    pub fn deployments(
        &self,
        filter: &DeploymentFilter,
        after: Option<u64>,
        upto: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<Deployment>>, ModelsError> {
        let (from, upto) = (after.map_or(NO_CURSOR, |a| bound(Some(a))), bound(upto));
        // What the index chosen below does not already ask, so what a record must be read for.
        let mut rest = filter.clone();
        if rest.ticket.take().is_none() && rest.since.take().is_some() {
            if rest.service.take().is_none() {
                rest.actor = None;
            }
        } else if filter.ticket.is_none() && rest.service.take().is_none() {
            rest.actor = None;
        }
        // Every row the index gives matches, as it stands now: none is read, only written out.
        let everything = rest == DeploymentFilter::default() && upto == i64::MAX;
        let c = &self.conn;
        let rows = if let Some(ticket) = &filter.ticket {
            Scan::new(
                c,
                "SELECT revision, record FROM deployments WHERE ticket = ?1 AND revision > ?2
                 AND revision <= ?3 ORDER BY ticket, revision LIMIT ?4",
                ticket.as_str(),
                from,
                upto,
            )
        } else if let Some(since) = filter.since {
            // Only the records with something at or after `since`, from their index: few,
            // however old the ledger; of one service or one person, only theirs.
            let (sql, key) = match (&filter.service, &filter.actor) {
                // The revisions are chosen and ordered first, and only the page's records read.
                (Some(service), _) => (
                    "SELECT revision, record FROM deployments WHERE revision IN (
                         SELECT revision FROM deployment_services
                         INDEXED BY deployment_services_activity
                         WHERE service = ?1 AND last_activity >= ?5 AND revision > ?2
                         AND revision <= ?3 ORDER BY revision LIMIT ?4)
                     ORDER BY revision",
                    service.as_str(),
                ),
                (None, Some(actor)) => (
                    "SELECT revision, record FROM deployments WHERE revision IN (
                         SELECT revision FROM deployment_actors
                         INDEXED BY deployment_actors_activity
                         WHERE actor = ?1 AND last_activity >= ?5 AND revision > ?2
                         AND revision <= ?3 ORDER BY revision LIMIT ?4)
                     ORDER BY revision",
                    actor.as_str(),
                ),
                (None, None) => (
                    "SELECT d.revision, d.record FROM deployments d
                     INDEXED BY deployments_last_activity
                     WHERE ?1 = ?1 AND d.last_activity >= ?5 AND d.revision > ?2
                     AND d.revision <= ?3 ORDER BY d.revision LIMIT ?4",
                    "",
                ),
            };
            Scan::new(c, sql, key, from, upto).at(millis_up(since))
        } else if let Some(service) = &filter.service {
            Scan::new(
                c,
                "SELECT d.revision, d.record FROM deployment_services s
                 JOIN deployments d ON d.revision = s.revision
                 WHERE s.service = ?1 AND s.revision > ?2 AND s.revision <= ?3
                 ORDER BY s.service, s.revision LIMIT ?4",
                service.as_str(),
                from,
                upto,
            )
        } else if let Some(actor) = &filter.actor {
            Scan::new(
                c,
                "SELECT d.revision, d.record FROM deployment_actors a
                 JOIN deployments d ON d.revision = a.revision
                 WHERE a.actor = ?1 AND a.revision > ?2 AND a.revision <= ?3
                 ORDER BY a.actor, a.revision LIMIT ?4",
                actor.as_str(),
                from,
                upto,
            )
        } else {
            Scan::new(
                c,
                "SELECT revision, record FROM deployments WHERE ?1 = ?1 AND revision > ?2
                 AND revision <= ?3 ORDER BY revision LIMIT ?4",
                "",
                from,
                upto,
            )
        };
        page_of(
            rows,
            limit,
            |json| self.stored_as_of(json, upto, everything),
            |d| Ok(everything || filter.matches(self.value(d)?)),
            &self.path,
        )
    }

    /// `who SERVICE`: its deployments that match, as of `upto`, most recent start first,
    /// started before the cursor.
    pub fn who(
        &self,
        service: &ServiceName,
        filter: &DeploymentFilter,
        before: Option<u64>,
        upto: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<Deployment>>, ModelsError> {
        let upto = bound(upto);
        // As in `deployments`: the index gives the service's records active since `since`.
        let everything = DeploymentFilter {
            since: None,
            ..filter.clone()
        } == DeploymentFilter::default()
            && upto == i64::MAX;
        let rows = match filter.since {
            // Only the service's records with something at or after `since`, from their index.
            Some(since) => Scan::new(
                &self.conn,
                "SELECT s.started_revision, d.record FROM (
                     SELECT started_revision, revision FROM started_services
                     INDEXED BY started_services_activity
                     WHERE service = ?1 AND last_activity >= ?5 AND started_revision < ?2
                     AND started_revision <= ?3 ORDER BY started_revision DESC LIMIT ?4) s
                 JOIN deployments d ON d.revision = s.revision
                 ORDER BY s.started_revision DESC",
                service.as_str(),
                bound(before),
                upto,
            )
            .at(millis_up(since)),
            None => Scan::new(
                &self.conn,
                "SELECT s.started_revision, d.record FROM started_services s
                 JOIN deployments d ON d.revision = s.revision
                 WHERE s.service = ?1 AND s.started_revision < ?2 AND s.started_revision <= ?3
                 ORDER BY s.service DESC, s.started_revision DESC LIMIT ?4",
                service.as_str(),
                bound(before),
                upto,
            ),
        };
        page_of(
            rows,
            limit,
            |json| self.stored_as_of(json, upto, everything),
            |d| Ok(everything || filter.matches(self.value(d)?)),
            &self.path,
        )
    }

    /// What changed before it broke: the deployments running or ended on `services` in the
    /// `window` before `at`, as the ledger stood at `at`, latest activity first, before the
    /// cursor. The candidates are those started in the window less the longest deployment
    /// ever recorded, and those never finished.
    pub fn suspects(
        &self,
        at: DateTime<Utc>,
        window: Duration,
        services: &[ServiceName],
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Deployment>, ModelsError> {
        let Some(upto) = self.revision_at(at)? else {
            return Ok(Page::whole(Vec::new()));
        };
        let upto = bound(Some(upto));
        let longest = meta(&self.conn, "longest_ms")
            .map_err(self.sql())?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let lowest = millis(at - window).saturating_sub(longest);
        let mut candidates: BTreeMap<i64, String> = BTreeMap::new();
        let mut read = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<(), ModelsError> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(self.sql())?;
            let rows = stmt
                .query_map(args, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(self.sql())?;
            for row in rows {
                let (revision, record) = row.map_err(self.sql())?;
                candidates.insert(revision, record);
            }
            Ok(())
        };
        read(
            "SELECT revision, record FROM deployments
             WHERE started_at >= ?1 AND started_at <= ?2 AND started_revision <= ?3",
            &[&lowest, &millis(at), &upto],
        )?;
        read(
            "SELECT revision, record FROM deployments
             WHERE started_revision IS NOT NULL AND finished_at IS NULL AND started_revision <= ?1",
            &[&upto],
        )?;
        let mut found = Vec::new();
        for record in candidates.values() {
            let d = self.as_of(self.row(record)?, upto)?;
            if is_suspect(&d, at, window, services) && before.is_none_or(|b| d.last_revision < b) {
                found.push(d);
            }
        }
        found.sort_by_key(|d| std::cmp::Reverse(d.last_revision));
        found.truncate(limit.saturating_add(1));
        Ok(Page::of(found, limit, |d| d.last_revision))
    }

    /// A stored record as it stood at revision `upto`, with its JSON as stored when nothing
    /// happened to it since.
    /// A stored record kept unread when `unread` (nothing to filter, no past point); otherwise
    /// read, and folded again as of `upto` when something happened to it since.
    fn stored_as_of(
        &self,
        json: &str,
        upto: i64,
        unread: bool,
    ) -> Result<Stored<Deployment>, ModelsError> {
        let row = |source| ModelsError::Row {
            path: self.path.clone(),
            source,
        };
        if unread {
            return Stored::unread(json).map_err(row);
        }
        let stored: Stored<Deployment> = Stored::read(json).map_err(row)?;
        if bound(Some(self.value(&stored)?.last_revision)) <= upto {
            return Ok(stored);
        }
        let value = stored.into_inner().map_err(row)?;
        Stored::new(self.as_of(value, upto)?).map_err(row)
    }

    /// The records of a page, read, with its cursor.
    pub fn values(&self, page: Page<Stored<Deployment>>) -> Result<Page<Deployment>, ModelsError> {
        let items = page
            .items
            .into_iter()
            .map(|stored| {
                stored.into_inner().map_err(|source| ModelsError::Row {
                    path: self.path.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// A stored record's value, read now if it was not.
    fn value<'s>(&self, stored: &'s Stored<Deployment>) -> Result<&'s Deployment, ModelsError> {
        stored.value().map_err(|source| ModelsError::Row {
            path: self.path.clone(),
            source,
        })
    }

    /// The record as it stood at revision `upto`: folded again from the ticket's events up to
    /// then when something happened to it later.
    fn as_of(&self, d: Deployment, upto: i64) -> Result<Deployment, ModelsError> {
        if bound(Some(d.last_revision)) <= upto {
            return Ok(d);
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT entry FROM history WHERE ticket = ?1 AND revision >= ?2
                 AND revision <= ?3 ORDER BY ticket, revision",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![d.ticket.as_str(), d.revision as i64, upto], |r| {
                r.get::<_, String>(0)
            })
            .map_err(self.sql())?;
        let mut then: Option<Deployment> = None;
        for row in rows {
            let entry: StoredEntry = self.row(&row.map_err(self.sql())?)?;
            match &mut then {
                None => {
                    then = Deployment::requested(entry.revision, entry.recorded_at, &entry.event)
                }
                Some(then) => {
                    if !then.apply(entry.revision, entry.recorded_at, &entry.event) {
                        break;
                    }
                }
            }
        }
        // The request itself is in the history; without it the record stands as stored.
        Ok(then.unwrap_or(d))
    }

    /// The delivery figures of `query` (`read::report`): the records that ended in its range,
    /// read from the activity index (an ended record's latest activity is its end, so the
    /// records read are those of the range), and for each rollback the next finished
    /// deployment of each service it touched.
    pub fn report(&self, query: &ReportQuery) -> Result<Vec<Figures>, ModelsError> {
        // Whole milliseconds, widened: the exact bounds are applied to each record.
        let (lowest, highest) = (millis(query.since), millis(query.until));
        let (sql, key) = match &query.service {
            Some(service) => (
                "SELECT d.record FROM deployment_services s
                 INDEXED BY deployment_services_activity
                 JOIN deployments d ON d.revision = s.revision
                 WHERE s.service = ?1 AND s.last_activity >= ?2 AND s.last_activity <= ?3",
                service.as_str(),
            ),
            None => (
                "SELECT record FROM deployments INDEXED BY deployments_last_activity
                 WHERE ?1 = ?1 AND last_activity >= ?2 AND last_activity <= ?3",
                "",
            ),
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.sql())?;
        let rows = stmt
            .query_map(params![key, lowest, highest], |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        let mut ended = Vec::new();
        for row in rows {
            let d: Deployment = self.row(&row.map_err(self.sql())?)?;
            if report::ended_in(&d, query.since, query.until) {
                ended.push(d);
            }
        }
        let mut restores = Restores::new();
        for d in &ended {
            let Some(at) = d
                .finished_at
                .filter(|_| d.outcome == Some(DeploymentOutcome::RolledBack))
            else {
                continue;
            };
            for service in &d.services {
                if query.service.as_ref().is_some_and(|s| s != service) {
                    continue;
                }
                if let Some(back) = self.next_finished(service, at)? {
                    restores.insert((d.revision, service.clone()), back);
                }
            }
        }
        Ok(report::figures(query, &ended, &restores))
    }

    /// When the first deployment of `service` to finish after `after` finished: its records
    /// in the order of their latest activity from then, read a few at a time.
    fn next_finished(
        &self,
        service: &ServiceName,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ModelsError> {
        const BATCH: i64 = 32;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.last_activity, s.revision, d.record FROM deployment_services s
                 INDEXED BY deployment_services_activity
                 JOIN deployments d ON d.revision = s.revision
                 WHERE s.service = ?1 AND (s.last_activity, s.revision) > (?2, ?3)
                 ORDER BY s.last_activity, s.revision LIMIT ?4",
            )
            .map_err(self.sql())?;
        let mut from = (millis(after), -1i64);
        loop {
            let rows: Vec<(i64, i64, String)> = stmt
                .query_map(params![service.as_str(), from.0, from.1, BATCH], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(self.sql())?
                .collect::<Result<_, _>>()
                .map_err(self.sql())?;
            for (last_activity, revision, record) in &rows {
                from = (*last_activity, *revision);
                let d: Deployment = self.row(record)?;
                if d.outcome == Some(DeploymentOutcome::Finished)
                    && let Some(finished) = d.finished_at.filter(|f| *f > after)
                {
                    return Ok(Some(finished));
                }
            }
            if (rows.len() as i64) < BATCH {
                return Ok(None);
            }
        }
    }

    /// Every history entry from revision `from` on, oldest first, `count` at most (for `verify`).
    pub fn history_from(&self, from: u64, count: usize) -> Result<Vec<HistoryEntry>, ModelsError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT entry FROM history WHERE revision >= ?1 ORDER BY revision LIMIT ?2",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![from as i64, count as i64], |r| {
                r.get::<_, String>(0)
            })
            .map_err(self.sql())?;
        let mut entries = Vec::new();
        for row in rows {
            entries.push(self.row::<StoredEntry>(&row.map_err(self.sql())?)?.into());
        }
        Ok(entries)
    }

    /// Every release record, in request order (for `verify`).
    pub fn all_deployments(&self) -> Result<Vec<Deployment>, ModelsError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM deployments ORDER BY revision")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        let mut all = Vec::new();
        for row in rows {
            all.push(self.row(&row.map_err(self.sql())?)?);
        }
        Ok(all)
    }
}
