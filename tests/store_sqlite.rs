//! The SQLite backend: the conformance suite, each case on a fresh file, then what only SQLite
//! promises (several `SqliteStore`s racing on one file, the file's own shape).

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use dobrobot::store::sqlite::SqliteStore;
use dobrobot::store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, StoreError};
use support::conformance::{Harness, conformance_suite};
use tempfile::TempDir;
use uuid::Uuid;

struct Sqlite {
    // Held so the directory outlives the store.
    _dir: TempDir,
    path: PathBuf,
    store: SqliteStore,
}

#[async_trait]
impl Harness for Sqlite {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(&path).await.expect("open a fresh store");
        Sqlite {
            _dir: dir,
            path,
            store,
        }
    }

    fn store(&self) -> &dyn EventStore {
        &self.store
    }

    async fn second_handle(&self) -> Box<dyn EventStore> {
        Box::new(
            SqliteStore::open(&self.path)
                .await
                .expect("open the same file again"),
        )
    }
}

conformance_suite!(Sqlite);

fn event() -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "TestEvent".to_string(),
        data: b"{}".to_vec(),
        metadata: b"{}".to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appenders_on_one_file_exactly_one_wins_per_round() {
    let h = Sqlite::start().await;
    let a: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&h.path).await.expect("open a"));
    let b: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&h.path).await.expect("open b"));
    let stream = "race";

    let mut expected = ExpectedRevision::NoStream;
    for round in 0..30u64 {
        let contenders = [Arc::clone(&a), Arc::clone(&b)].map(|store| {
            tokio::spawn(async move { store.append(stream, expected, vec![event()]).await })
        });
        let mut wins = 0;
        for contender in contenders {
            match contender.await.expect("the append task ran") {
                Ok(result) => {
                    wins += 1;
                    assert!(result.written);
                    assert_eq!(result.first_revision, round);
                }
                Err(StoreError::WrongExpectedRevision { actual, .. }) => {
                    assert_eq!(actual, Some(round), "the loser sees the winner's event");
                }
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
        expected = ExpectedRevision::Exact(round);
    }

    let all = h
        .store
        .read(stream, Direction::Forwards, ReadFrom::Start, usize::MAX)
        .await
        .expect("read");
    assert_eq!(
        all.iter().map(|e| e.revision).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_id_stored_in_another_stream_is_a_partial_duplicate() {
    // Event ids are unique across the whole file, not per stream.
    let h = Sqlite::start().await;
    let e = event();
    h.store
        .append("one", ExpectedRevision::NoStream, vec![e.clone()])
        .await
        .expect("append");
    let refused = h
        .store
        .append("two", ExpectedRevision::Any, vec![e.clone()])
        .await;
    assert_eq!(
        refused,
        Err(StoreError::PartialDuplicate {
            stream: "two".to_string(),
            id: e.id
        })
    );
    assert_eq!(h.store.last_revision("two").await, Ok(None));
}

#[tokio::test]
async fn open_creates_directories_and_a_versioned_wal_file_that_survives_reopening() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("nested/deeper/events.db");
    let store = SqliteStore::open(&path).await.expect("open");
    store
        .append("s", ExpectedRevision::NoStream, vec![event(), event()])
        .await
        .expect("append");
    drop(store);

    let reopened = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(reopened.last_revision("s").await, Ok(Some(1)));

    let conn = rusqlite::Connection::open(&path).expect("open the file directly");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!((version, mode.as_str()), (1, "wal"));
}

#[tokio::test]
async fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("events.db");
    let conn = rusqlite::Connection::open(&path).expect("create the file");
    conn.pragma_update(None, "user_version", 99)
        .expect("set user_version");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path).await,
        Err(StoreError::Backend(_))
    ));
}

#[tokio::test]
async fn a_path_that_cannot_hold_a_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let result = SqliteStore::open(blocker.join("events.db")).await;
    assert!(result.is_err());
}
