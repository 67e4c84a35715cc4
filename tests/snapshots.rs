//! Snapshots of the writer's state: written every N events, beside the ledger, in the same
//! store; a writer opened later starts from the last one and continues the chain; a question as
//! of a past point starts from the nearest one before it; a snapshot the chain does not vouch
//! for is ignored, and one whose state differs from the fold is named by `verify`. After a
//! random command history, on SQLite and on the EventStoreDB double, every snapshot and the
//! reopened writer equal a fresh fold.

mod support;

use std::sync::Arc;

use chrono::Duration;
use dobrobot::domain::State;
use dobrobot::ledger::{self, Ledger, Options};
use dobrobot::projections::{self, AsOf, Live};
use dobrobot::read;
use dobrobot::snapshots::{self, WriterSnapshot};
use dobrobot::store::{self, EventStore};
use dobrobot::verify::{self, VerifyError};

use support::fixtures::{
    TestClock, monday, on_both_stores, policy, random_command, record, wait_until,
};

const EVERY: u64 = 4;

fn stream() -> String {
    ledger::stream_name("test")
}

async fn open(store: &Arc<dyn EventStore>, clock: &TestClock) -> Ledger {
    Ledger::open(
        store.clone(),
        stream(),
        Arc::new(policy()),
        Options {
            clock: clock.clock(),
            snapshot_every: EVERY,
            ..Options::default()
        },
    )
    .await
    .expect("open the ledger")
}

/// The live state folded from revision 0, as of `as_of`.
async fn fold(store: &Arc<dyn EventStore>, as_of: AsOf) -> Live {
    let mut live = Live::default();
    projections::build(store, &stream(), as_of, &mut live)
        .await
        .unwrap();
    live
}

async fn stored(store: &Arc<dyn EventStore>) -> Vec<WriterSnapshot> {
    snapshots::all(store, &stream())
        .await
        .unwrap()
        .into_iter()
        .map(|(_, s)| s.expect("a readable snapshot"))
        .collect()
}

/// Waits until the snapshot of `revision` is stored (they are written in the background).
async fn snapshot_of(store: &Arc<dyn EventStore>, revision: u64) {
    wait_until(|| async { stored(store).await.iter().any(|s| s.revision == revision) }).await;
}

fn release(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("bob", format!("dobro #PAY-{n} https://wiki/x notes")),
        ("alice", format!("accept PAY-{n}")),
        ("oleg", format!("here PAY-{n}")),
        ("bob", format!("dep start PAY-{n}")),
        ("bob", format!("dep finish PAY-{n}")),
    ]
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    store::open(&format!(
        "sqlite://{}",
        dir.path().join("ledger.db").display()
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_reopened_writer_starts_from_the_last_snapshot_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = TestClock::new(monday());
    let first = open(&store, &clock).await;
    let mut commands = release(1);
    commands.extend(release(2));
    record(&first, &clock, &commands[..9]).await;
    // Revisions 0..=8: snapshots after 3 and 7.
    snapshot_of(&store, 7).await;
    let revisions: Vec<u64> = stored(&store).await.iter().map(|s| s.revision).collect();
    assert_eq!(revisions, [3, 7]);
    drop(first);

    let second = open(&store, &clock).await;
    let reopened = second.snapshot();
    assert_eq!(reopened.revision, Some(8));
    assert_eq!(*reopened.state, fold(&store, AsOf::Latest).await.state);
    // It goes on where the first left off: the chain verifies, snapshots included.
    record(&second, &clock, &commands[9..]).await;
    let report = verify::verify(&store, &stream()).await.unwrap();
    assert_eq!(report.events, 10);
    assert_eq!(report.snapshots, 2);
    assert_eq!(second.snapshot().revision, Some(9));

    // As of a past point: from the nearest snapshot, the same answer as a fold from 0.
    for as_of in [
        AsOf::Revision(2),
        AsOf::Revision(3),
        AsOf::Revision(6),
        AsOf::Time(monday() + Duration::minutes(5)),
        AsOf::Time(monday() + Duration::seconds(8 * 60 + 30)),
        AsOf::Latest,
    ] {
        let from_snapshot = read::live_as_of(&store, &stream(), as_of).await.unwrap();
        assert_eq!(from_snapshot, fold(&store, as_of).await, "{as_of:?}");
    }
}

#[tokio::test]
async fn a_snapshot_the_chain_does_not_vouch_for_is_ignored_and_a_tampered_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = TestClock::new(monday());
    let ledger = open(&store, &clock).await;
    record(&ledger, &clock, &release(1)).await;
    snapshot_of(&store, 3).await;
    drop(ledger);
    let good = stored(&store).await.remove(0);

    // A later snapshot with a hash the chain does not have: a writer does not trust it.
    let mut forged = good.clone();
    forged.revision = 4;
    forged.hash = "f".repeat(64);
    forged.state = State::default();
    snapshots::write(&store, &stream(), &forged).await.unwrap();
    let reopened = open(&store, &clock).await;
    assert_eq!(
        *reopened.snapshot().state,
        fold(&store, AsOf::Latest).await.state,
        "the forged snapshot was not used"
    );
    drop(reopened);
    match verify::verify(&store, &stream()).await {
        Err(VerifyError::BadSnapshot { revision, problem }) => {
            assert_eq!(revision, 4);
            assert!(problem.contains("hash"), "{problem}");
        }
        other => panic!("verify should name the forged snapshot: {other:?}"),
    }

    // A snapshot with the right hash and a state that differs from the fold.
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let ledger = open(&store, &TestClock::new(monday())).await;
    record(&ledger, &TestClock::new(monday()), &release(1)[..4]).await;
    snapshot_of(&store, 3).await;
    drop(ledger);
    let mut tampered = stored(&store).await.remove(0);
    tampered.state.locks.clear();
    // Stored under another id (a new event): the original stays, the tampered one follows.
    tampered.deliveries.push(uuid::Uuid::nil());
    let mut events = store
        .read(
            &snapshots::stream_of(&stream()),
            dobrobot::store::Direction::Forwards,
            dobrobot::store::ReadFrom::Start,
            10,
        )
        .await
        .unwrap();
    let original = events.remove(0);
    store
        .append(
            &snapshots::stream_of(&stream()),
            dobrobot::store::ExpectedRevision::Any,
            vec![dobrobot::store::NewEvent {
                id: uuid::Uuid::now_v7(),
                event_type: original.event_type,
                data: serde_json::to_vec(&tampered).unwrap(),
                metadata: original.metadata,
            }],
        )
        .await
        .unwrap();
    match verify::verify(&store, &stream()).await {
        Err(VerifyError::BadSnapshot { revision, problem }) => {
            assert_eq!(revision, 3);
            assert!(problem.contains("differs"), "{problem}");
        }
        other => panic!("verify should name the tampered snapshot: {other:?}"),
    }
}

#[test]
fn after_a_random_history_every_snapshot_and_a_reopened_writer_equal_the_fold() {
    on_both_stores(
        12,
        proptest::collection::vec(random_command(), 1..40),
        async |case, store, _, commands| {
            let environment = format!("case-{case}");
            let stream = ledger::stream_name(&environment);
            let clock = TestClock::new(monday());
            let ledger = Ledger::open(
                store.clone(),
                stream.clone(),
                Arc::new(policy()),
                Options {
                    clock: clock.clock(),
                    snapshot_every: 3,
                    ..Options::default()
                },
            )
            .await
            .unwrap();
            record(&ledger, &clock, &commands).await;
            let last = ledger.snapshot().revision.unwrap();
            // One every three events: after revisions 2, 5, 8, ...
            let expected = (last + 1) / 3;
            wait_until(|| async {
                snapshots::all(&store, &stream).await.unwrap().len() as u64 == expected
            })
            .await;
            drop(ledger);
            let report = verify::verify(&store, &stream).await.unwrap();
            assert_eq!(report.snapshots as u64, expected);
            // A past point finds the last snapshot before it (by halves, past the newest).
            let all: Vec<WriterSnapshot> = snapshots::all(&store, &stream)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, s)| s.unwrap())
                .collect();
            for revision in 0..=last {
                let before = all
                    .iter()
                    .filter(|s| s.revision <= revision)
                    .map(|s| s.revision)
                    .max();
                let found = snapshots::latest(&store, &stream, Some(revision), None).await;
                assert_eq!(
                    found.map(|s| s.revision),
                    before,
                    "before revision {revision}"
                );
            }
            for snapshot in &all {
                let at = snapshot.recorded_at;
                let before = all
                    .iter()
                    .filter(|s| s.recorded_at <= at)
                    .map(|s| s.revision)
                    .max();
                let found = snapshots::latest(&store, &stream, None, Some(at)).await;
                assert_eq!(found.map(|s| s.revision), before, "before {at}");
                let earlier = at - Duration::milliseconds(1);
                let before = all
                    .iter()
                    .filter(|s| s.recorded_at <= earlier)
                    .map(|s| s.revision)
                    .max();
                let found = snapshots::latest(&store, &stream, None, Some(earlier)).await;
                assert_eq!(found.map(|s| s.revision), before, "before {earlier}");
            }
            let reopened = Ledger::open(
                store.clone(),
                stream.clone(),
                Arc::new(policy()),
                Options::default(),
            )
            .await
            .unwrap();
            let mut live = Live::default();
            projections::build(&store, &stream, AsOf::Latest, &mut live)
                .await
                .unwrap();
            assert_eq!(*reopened.snapshot().state, live.state);
        },
    );
}
