//! `migrate` between real stores, through the library and through the binary: the target gets
//! the same events (ids, order, types, data and metadata bytes), `dobrobot verify` passes on it, a
//! second run appends nothing, an interrupted copy resumes, and a broken source or a target that
//! holds something else is refused before anything is written; a target that changes the bytes it
//! is given fails the check after the copy.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use assert_cmd::Command;
mod support;

use dobrobot::ledger::{self, Ledger};
use dobrobot::migrate::{self, MigrateError, Options, Report};
use dobrobot::store::{
    self, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
};
use rusqlite::params;
use support::fixtures::{policy, submission};
use tempfile::TempDir;
use uuid::Uuid;

const ENVIRONMENT: &str = "test";

/// Two SQLite files in a temp dir: the source and the target of a migration.
struct Site {
    dir: TempDir,
    stream: String,
}

impl Site {
    fn new() -> Self {
        Site {
            dir: tempfile::tempdir().expect("a temp dir"),
            stream: ledger::stream_name(ENVIRONMENT),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self, name: &str) -> String {
        format!("sqlite://{}", self.path(name).display())
    }

    async fn store(&self, name: &str) -> Arc<dyn EventStore> {
        store::open(&self.url(name))
            .await
            .expect("open the SQLite store")
    }

    /// The binary, in the temp dir, on the test environment, with no `DOBROBOT_*` inherited.
    fn dobrobot(&self, args: &[&str]) -> Output {
        let mut cmd = Command::cargo_bin("dobrobot").expect("the dobrobot binary");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DOBROBOT_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("DOBROBOT_ENVIRONMENT", ENVIRONMENT)
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .expect("run dobrobot")
    }

    fn migrate_cli(&self, from: &str, to: &str) -> Output {
        self.dobrobot(&["migrate", "--from", from, "--to", to])
    }

    async fn migrate(
        &self,
        from: &str,
        to: &str,
        options: &Options,
    ) -> Result<Report, MigrateError> {
        let (source, target) = (self.store(from).await, self.store(to).await);
        migrate::migrate(&source, &target, &self.stream, options).await
    }

    async fn events(&self, name: &str) -> Vec<RecordedEvent> {
        all_events(&self.store(name).await, &self.stream).await
    }

    /// Runs `rounds` rounds of request, refused accept (carol), accept: three events each, one of
    /// them a `CommandRefused`.
    async fn seed(&self, name: &str, rounds: usize) {
        seed(&self.store(name).await, &self.stream, rounds).await;
    }

    fn sqlite(&self, name: &str) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(name)).expect("open the file with rusqlite")
    }
}

async fn seed(store: &Arc<dyn EventStore>, stream: &str, rounds: usize) {
    let ledger = Ledger::open(
        store.clone(),
        stream.to_string(),
        Arc::new(policy()),
        ledger::Options::default(),
    )
    .await
    .expect("open the ledger");
    let before = store.last_revision(stream).await.expect("read the stream");
    for n in 0..rounds {
        // Tickets numbered after what is there, so seeding twice adds a new ledger's worth.
        let ticket = format!("PAY-{}", before.map_or(0, |r| r + 1) + n as u64 + 1);
        for (who, text) in [
            ("bob", format!("dobro #{ticket} https://wiki/x notes")),
            ("carol", format!("accept {ticket}")),
            ("alice", format!("accept {ticket}")),
        ] {
            ledger
                .submit(submission(who, &text))
                .await
                .unwrap_or_else(|e| panic!("`{text}` by {who} was not recorded: {e}"));
        }
    }
}

async fn all_events(store: &Arc<dyn EventStore>, stream: &str) -> Vec<RecordedEvent> {
    store
        .read(stream, Direction::Forwards, ReadFrom::Start, 1_000_000)
        .await
        .expect("read the stream")
}

/// The parts of an event that a migration keeps: everything but the store's write time.
#[derive(Debug, PartialEq, Eq)]
struct Kept {
    stream: String,
    revision: u64,
    id: Uuid,
    event_type: String,
    data: Vec<u8>,
    metadata: Vec<u8>,
}

fn kept(events: &[RecordedEvent]) -> Vec<Kept> {
    events
        .iter()
        .map(|e| Kept {
            stream: e.stream.clone(),
            revision: e.revision,
            id: e.id,
            event_type: e.event_type.clone(),
            data: e.data.clone(),
            metadata: e.metadata.clone(),
        })
        .collect()
}

/// Appends `events` to `stream` in `store` as they are, after its current last revision.
async fn append_as_is(store: &Arc<dyn EventStore>, stream: &str, events: &[RecordedEvent]) {
    let expected = match store.last_revision(stream).await.expect("read the stream") {
        None => ExpectedRevision::NoStream,
        Some(r) => ExpectedRevision::Exact(r),
    };
    let batch = events
        .iter()
        .map(|e| NewEvent {
            id: e.id,
            event_type: e.event_type.clone(),
            data: e.data.clone(),
            metadata: e.metadata.clone(),
        })
        .collect();
    store
        .append(stream, expected, batch)
        .await
        .expect("append to the target");
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// `dobrobot verify --store URL` on the test environment passes, with `events` events.
fn assert_cli_verifies(site: &Site, url: &str, events: usize) {
    let output = site.dobrobot(&["verify", "--store", url]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with(&format!("ok: {events} events in {}", site.stream)),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn cli_copies_a_sqlite_ledger_exactly_and_verify_passes_on_the_target() {
    let site = Site::new();
    site.seed("source.db", 10).await;
    let (from, to) = (site.url("source.db"), site.url("target.db"));

    let output = site.migrate_cli(&from, &to);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with(&format!("copied 30 events of {}", site.stream)),
        "{}",
        stdout(&output)
    );
    let source = site.events("source.db").await;
    let target = site.events("target.db").await;
    assert_eq!(source.len(), 30);
    assert_eq!(kept(&target), kept(&source));
    assert_cli_verifies(&site, &to, 30);

    let again = site.migrate_cli(&from, &to);
    assert_exit(&again, 0);
    assert!(
        stdout(&again).starts_with("nothing to copy:"),
        "{}",
        stdout(&again)
    );
    // Not one row rewritten: even the store's write times are those of the first run.
    assert_eq!(site.events("target.db").await, target);
}

#[tokio::test]
async fn the_library_pages_and_batches_through_the_source() {
    let site = Site::new();
    site.seed("source.db", 40).await;
    let options = Options {
        page: 7,
        batch_events: 5,
        batch_bytes: usize::MAX,
    };

    let report = site
        .migrate("source.db", "target.db", &options)
        .await
        .expect("the copy");
    assert_eq!(
        (report.events, report.already_present, report.copied),
        (120, 0, 120)
    );
    // Pages of 7 cut batches of 5: each page of 7 is a batch of 5 and one of 2.
    assert_eq!(report.batches, 120 / 7 * 2 + 1);
    let source = site.events("source.db").await;
    assert_eq!(kept(&site.events("target.db").await), kept(&source));
    assert_eq!(
        Some(report.last_hash.as_str()),
        dobrobot::envelope::stored_hash(source.last().expect("events")).as_deref()
    );

    let again = site
        .migrate("source.db", "target.db", &options)
        .await
        .expect("the second run");
    assert_eq!(
        (again.already_present, again.copied, again.batches),
        (120, 0, 0)
    );
}

#[tokio::test]
async fn a_batch_stays_under_the_byte_limit_and_a_larger_event_goes_alone() {
    let site = Site::new();
    site.seed("source.db", 4).await;
    let source = site.events("source.db").await;
    let largest = source
        .iter()
        .map(|e| e.data.len() + e.metadata.len())
        .max()
        .expect("events");

    let alone = Options {
        batch_bytes: 1,
        ..Options::default()
    };
    let report = site
        .migrate("source.db", "one-by-one.db", &alone)
        .await
        .expect("the copy");
    assert_eq!((report.copied, report.batches), (12, 12));

    let two = Options {
        batch_bytes: 2 * largest,
        ..Options::default()
    };
    let report = site
        .migrate("source.db", "pairs.db", &two)
        .await
        .expect("the copy");
    assert!(report.batches >= 6, "{report:?}");
    assert_eq!(kept(&site.events("pairs.db").await), kept(&source));
}

#[tokio::test]
async fn a_target_holding_a_prefix_is_resumed_after_it() {
    let site = Site::new();
    site.seed("source.db", 10).await;
    let source = site.events("source.db").await;
    append_as_is(&site.store("target.db").await, &site.stream, &source[..11]).await;

    let report = site
        .migrate("source.db", "target.db", &Options::default())
        .await
        .expect("the copy");
    assert_eq!(
        (report.events, report.already_present, report.copied),
        (30, 11, 19)
    );
    assert_eq!(kept(&site.events("target.db").await), kept(&source));
    assert_cli_verifies(&site, &site.url("target.db"), 30);
}

#[tokio::test]
async fn a_target_that_diverges_is_refused_naming_the_revision_and_nothing_is_written() {
    let site = Site::new();
    site.seed("source.db", 3).await;
    let source = site.events("source.db").await;
    let target = site.store("target.db").await;
    append_as_is(&target, &site.stream, &source[..4]).await;
    let foreign = RecordedEvent {
        id: Uuid::now_v7(),
        ..source[4].clone()
    };
    append_as_is(&target, &site.stream, std::slice::from_ref(&foreign)).await;
    let before = site.events("target.db").await;

    let refused = site
        .migrate("source.db", "target.db", &Options::default())
        .await;
    match refused {
        Err(MigrateError::Diverged {
            revision,
            source_id,
            target_id,
            ..
        }) => assert_eq!(
            (revision, source_id, target_id),
            (4, source[4].id, foreign.id)
        ),
        other => panic!("expected a divergence at revision 4, got {other:?}"),
    }
    assert_eq!(site.events("target.db").await, before);
}

#[tokio::test]
async fn cli_refuses_a_target_with_another_ledger() {
    let site = Site::new();
    site.seed("source.db", 2).await;
    site.seed("other.db", 2).await;
    let before = site.events("other.db").await;

    let output = site.migrate_cli(&site.url("source.db"), &site.url("other.db"));
    assert_exit(&output, 1);
    let error = stderr(&output);
    assert!(error.contains("at revision 0"), "{error}");
    assert!(error.contains("nothing was written"), "{error}");
    assert_eq!(site.events("other.db").await, before);
}

#[tokio::test]
async fn a_target_that_goes_on_past_the_source_is_refused() {
    let site = Site::new();
    site.seed("source.db", 2).await;
    site.migrate("source.db", "target.db", &Options::default())
        .await
        .expect("the first copy");
    // The target is then used as the ledger: it holds the source and more.
    seed(&site.store("target.db").await, &site.stream, 1).await;

    match site
        .migrate("source.db", "target.db", &Options::default())
        .await
    {
        Err(MigrateError::TargetAhead {
            revision,
            source_events,
            ..
        }) => assert_eq!((revision, source_events), (6, 6)),
        other => panic!("expected the target to be ahead, got {other:?}"),
    }
}

#[tokio::test]
async fn a_target_event_with_the_same_id_but_other_bytes_is_refused() {
    let site = Site::new();
    site.seed("source.db", 2).await;
    let source = site.events("source.db").await;
    append_as_is(&site.store("target.db").await, &site.stream, &source[..3]).await;
    let changed = site
        .sqlite("target.db")
        .execute(
            "UPDATE events SET data = ?1 WHERE stream = ?2 AND revision = 2",
            params![b"{}".as_slice(), site.stream],
        )
        .expect("update the row");
    assert_eq!(changed, 1);

    match site
        .migrate("source.db", "target.db", &Options::default())
        .await
    {
        Err(MigrateError::Altered { revision, id, .. }) => {
            assert_eq!((revision, id), (2, source[2].id))
        }
        other => panic!("expected an altered event at revision 2, got {other:?}"),
    }
    assert_eq!(site.events("target.db").await.len(), 3);
}

/// Replaces the data of the source's event at revision 3, which breaks its hash.
fn break_source(site: &Site) {
    let changed = site
        .sqlite("source.db")
        .execute(
            "UPDATE events SET data = ?1 WHERE stream = ?2 AND revision = 3",
            params![
                br#"{"ticket":"PAY-9","approver":"mallory"}"#.as_slice(),
                site.stream
            ],
        )
        .expect("update the row");
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn a_broken_source_is_refused_and_nothing_is_written() {
    let site = Site::new();
    site.seed("source.db", 3).await;
    break_source(&site);

    match site
        .migrate("source.db", "target.db", &Options::default())
        .await
    {
        Err(MigrateError::SourceBroken(bad)) => assert_eq!(bad.revision, 3),
        other => panic!("expected the source to be refused, got {other:?}"),
    }
    assert!(site.events("target.db").await.is_empty());

    let output = site.migrate_cli(&site.url("source.db"), &site.url("cli-target.db"));
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("revision 3"),
        "{}",
        stderr(&output)
    );
    assert!(site.events("cli-target.db").await.is_empty());
}

#[tokio::test]
async fn an_empty_source_copies_nothing() {
    let site = Site::new();
    let report = site
        .migrate("source.db", "target.db", &Options::default())
        .await
        .expect("the copy");
    assert_eq!((report.events, report.copied, report.batches), (0, 0, 0));

    let output = site.migrate_cli(&site.url("source.db"), &site.url("target.db"));
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("nothing to copy:"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_bad_url_is_an_error_not_a_refusal() {
    let site = Site::new();
    let output = site.migrate_cli("nosuch://x", &site.url("target.db"));
    assert_exit(&output, 3);
    assert!(stderr(&output).contains("source"), "{}", stderr(&output));
    assert!(!Path::new(&site.path("target.db")).exists());
}

/// A target that stores data with a byte more than it was given: what a backend that
/// re-serialized JSON would do to the hash chain.
struct Reformatting(Arc<dyn EventStore>);

#[async_trait::async_trait]
impl EventStore for Reformatting {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        mut events: Vec<NewEvent>,
    ) -> Result<store::AppendResult, store::StoreError> {
        for event in &mut events {
            event.data.push(b'\n');
        }
        self.0.append(stream, expected, events).await
    }

    async fn read(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, store::StoreError> {
        self.0.read(stream, direction, from, max).await
    }

    async fn subscribe(
        &self,
        stream: &str,
        after: Option<u64>,
    ) -> Result<store::Subscription, store::StoreError> {
        self.0.subscribe(stream, after).await
    }
}

#[tokio::test]
async fn a_target_that_changes_the_bytes_fails_the_check_after_the_copy() {
    let site = Site::new();
    site.seed("source.db", 2).await;
    let source = site.store("source.db").await;
    let target: Arc<dyn EventStore> = Arc::new(Reformatting(site.store("target.db").await));

    let result = migrate::migrate(&source, &target, &site.stream, &Options::default()).await;
    match result {
        Err(error @ MigrateError::TargetBroken(_)) => assert!(!error.is_refusal()),
        other => panic!("expected verify to fail on the target, got {other:?}"),
    }
}

/// From the embedded store to EventStoreDB (the wire-level double, through the real `kurrentdb`
/// client) and back: the ids, order and bytes survive both trips, `dobrobot verify` passes on
/// the EventStoreDB ledger, and a second run appends nothing either way. (Multi-threaded: the
/// binary runs while the double serves from this process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esdb_round_trip_from_sqlite_to_eventstoredb_and_back() {
    let site = Site::new();
    site.seed("source.db", 20).await;
    let source_events = site.events("source.db").await;
    let double = esdb_double::Double::start().await;
    let esdb_url = double.url();
    let esdb = store::open(&esdb_url).await.expect("open the double");

    let options = Options {
        page: 16,
        batch_events: 10,
        ..Options::default()
    };
    let there = migrate::migrate(
        &site.store("source.db").await,
        &esdb,
        &site.stream,
        &options,
    )
    .await
    .expect("the copy to EventStoreDB");
    assert_eq!((there.events, there.copied, there.batches), (60, 60, 8));
    assert_eq!(
        kept(&all_events(&esdb, &site.stream).await),
        kept(&source_events)
    );
    let stored = double.events(&site.stream);
    assert_eq!(
        stored.iter().map(|e| e.id).collect::<Vec<_>>(),
        source_events.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    assert!(
        stored.iter().all(|e| e.content_type == "application/json"),
        "the ledger's data goes as JSON"
    );
    tokio::task::block_in_place(|| assert_cli_verifies(&site, &esdb_url, 60));

    let again = migrate::migrate(
        &site.store("source.db").await,
        &esdb,
        &site.stream,
        &options,
    )
    .await
    .expect("the second run");
    assert_eq!((again.already_present, again.copied), (60, 0));
    assert_eq!(double.events(&site.stream), stored);

    let back = site.url("back.db");
    let output = tokio::task::block_in_place(|| site.migrate_cli(&esdb_url, &back));
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with(&format!("copied 60 events of {}", site.stream)),
        "{}",
        stdout(&output)
    );
    assert_eq!(kept(&site.events("back.db").await), kept(&source_events));
    let output = tokio::task::block_in_place(|| site.migrate_cli(&esdb_url, &back));
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("nothing to copy:"),
        "{}",
        stdout(&output)
    );
}

/// On EventStoreDB too, an interrupted copy resumes after what is there, and a target whose
/// stream holds another event at a revision is refused with nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esdb_target_resumes_after_a_prefix_and_refuses_a_divergence() {
    let site = Site::new();
    site.seed("source.db", 4).await;
    let source_events = site.events("source.db").await;
    let source = site.store("source.db").await;

    let double = esdb_double::Double::start().await;
    let esdb = store::open(&double.url()).await.expect("open the double");
    append_as_is(&esdb, &site.stream, &source_events[..5]).await;
    let report = migrate::migrate(&source, &esdb, &site.stream, &Options::default())
        .await
        .expect("the resumed copy");
    assert_eq!((report.already_present, report.copied), (5, 7));
    assert_eq!(
        kept(&all_events(&esdb, &site.stream).await),
        kept(&source_events)
    );

    let other = esdb_double::Double::start().await;
    let diverged = store::open(&other.url()).await.expect("open the double");
    append_as_is(&diverged, &site.stream, &source_events[..2]).await;
    let foreign = RecordedEvent {
        id: Uuid::now_v7(),
        ..source_events[2].clone()
    };
    append_as_is(&diverged, &site.stream, std::slice::from_ref(&foreign)).await;
    match migrate::migrate(&source, &diverged, &site.stream, &Options::default()).await {
        Err(MigrateError::Diverged { revision, .. }) => assert_eq!(revision, 2),
        other => panic!("expected a divergence at revision 2, got {other:?}"),
    }
    assert_eq!(other.events(&site.stream).len(), 3);
}
