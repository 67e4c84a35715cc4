//! The event store conformance suite: the semantics of `dobrobot::store::EventStore`, written
//! once and run against every backend.
//!
//! A backend provides a [`Harness`] and instantiates the whole suite with
//! `conformance_suite!(ItsHarness);`, which makes each case its own `#[tokio::test]`. Listing
//! the cases in the macro, not in each backend's test file, means no backend can skip one.
//!
//! Every case names its streams with a fresh UUID, so the suite also runs against a shared
//! server (EventStoreDB) that is not emptied between cases.

// Each test binary declares `mod support;` but uses only some of its modules.
#![allow(dead_code)]

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use dobrobot::store::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, READ_PAGE, ReadFrom,
    RecordedEvent, StoreError, Subscription, SubscriptionItem,
};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

/// One backend under test.
#[async_trait]
pub trait Harness: Sized + Send + Sync {
    /// A store for one case.
    async fn start() -> Self;
    fn store(&self) -> &dyn EventStore;
    /// A second, independent handle on the same store (another connection, another client).
    async fn second_handle(&self) -> Box<dyn EventStore>;
}

/// Instantiates every case of the suite as a `#[tokio::test]` for one backend's harness.
macro_rules! conformance_suite {
    ($harness:ty) => {
        $crate::support::conformance::conformance_suite!(@cases $harness;
            append_to_new_stream_with_no_stream,
            exact_revision_appends_after_the_last_event,
            exact_revision_conflict_reports_the_actual_revision,
            no_stream_on_an_existing_stream_conflicts,
            stream_exists_on_a_missing_stream_conflicts,
            stream_exists_on_an_existing_stream_appends,
            any_appends_to_new_and_existing_streams,
            empty_batch_only_checks_the_expected_revision,
            repeated_batch_returns_the_original_revisions_and_writes_nothing,
            partial_duplicate_is_rejected_and_nothing_is_written,
            read_forwards,
            read_backwards,
            read_pages_reads_forwards_to_the_end_in_whole_pages,
            missing_stream_reads_empty,
            revisions_are_contiguous_from_zero,
            events_round_trip_byte_exact,
            subscribe_from_start_yields_history_then_caught_up_then_live,
            subscribe_after_a_revision,
            subscribe_to_a_missing_stream,
            subscribe_pages_through_a_long_history,
            subscription_sees_appends_through_a_second_handle,
            streams_are_isolated,
        );
    };
    (@cases $harness:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let harness =
                    <$harness as $crate::support::conformance::Harness>::start().await;
                $crate::support::conformance::$case(&harness).await;
            }
        )*
    };
}
pub(crate) use conformance_suite;

/// How long a subscription may take to deliver an item it owes.
const DELIVERY: Duration = Duration::from_secs(5);
/// How long to watch a subscription to be sure it yields nothing more (longer than any poll).
const QUIET: Duration = Duration::from_millis(500);

pub async fn append_to_new_stream_with_no_stream(h: &impl Harness) {
    let store = h.store();
    let s = stream("new");
    let result = store
        .append(&s, ExpectedRevision::NoStream, events(3))
        .await
        .expect("append to a new stream");
    assert_eq!(result, written(0, 2));
    assert_eq!(revisions(&read_all(store, &s).await), [0, 1, 2]);
    assert_eq!(store.last_revision(&s).await, Ok(Some(2)));
}

pub async fn exact_revision_appends_after_the_last_event(h: &impl Harness) {
    let store = h.store();
    let s = stream("exact");
    append_ok(store, &s, ExpectedRevision::NoStream, events(3)).await;
    let result = store
        .append(&s, ExpectedRevision::Exact(2), events(2))
        .await
        .expect("append at the stream's last revision");
    assert_eq!(result, written(3, 4));
    assert_eq!(revisions(&read_all(store, &s).await), [0, 1, 2, 3, 4]);
}

pub async fn exact_revision_conflict_reports_the_actual_revision(h: &impl Harness) {
    let store = h.store();
    let s = stream("exact-conflict");
    append_ok(store, &s, ExpectedRevision::NoStream, events(3)).await;
    for stale in [0, 1, 3, 7] {
        let refused = store
            .append(&s, ExpectedRevision::Exact(stale), events(1))
            .await;
        assert_eq!(
            refused,
            Err(wrong(&s, ExpectedRevision::Exact(stale), Some(2)))
        );
    }
    assert_eq!(
        read_all(store, &s).await.len(),
        3,
        "a refused append writes nothing"
    );

    let missing = stream("exact-missing");
    let refused = store
        .append(&missing, ExpectedRevision::Exact(0), events(1))
        .await;
    assert_eq!(
        refused,
        Err(wrong(&missing, ExpectedRevision::Exact(0), None))
    );
    assert_eq!(store.last_revision(&missing).await, Ok(None));
}

pub async fn no_stream_on_an_existing_stream_conflicts(h: &impl Harness) {
    let store = h.store();
    let s = stream("no-stream-conflict");
    append_ok(store, &s, ExpectedRevision::NoStream, events(2)).await;
    let refused = store
        .append(&s, ExpectedRevision::NoStream, events(1))
        .await;
    assert_eq!(refused, Err(wrong(&s, ExpectedRevision::NoStream, Some(1))));
    assert_eq!(read_all(store, &s).await.len(), 2);
}

pub async fn stream_exists_on_a_missing_stream_conflicts(h: &impl Harness) {
    let store = h.store();
    let s = stream("exists-conflict");
    let refused = store
        .append(&s, ExpectedRevision::StreamExists, events(1))
        .await;
    assert_eq!(
        refused,
        Err(wrong(&s, ExpectedRevision::StreamExists, None))
    );
    assert!(read_all(store, &s).await.is_empty());
}

pub async fn stream_exists_on_an_existing_stream_appends(h: &impl Harness) {
    let store = h.store();
    let s = stream("exists");
    append_ok(store, &s, ExpectedRevision::NoStream, events(1)).await;
    let result = store
        .append(&s, ExpectedRevision::StreamExists, events(2))
        .await;
    assert_eq!(result, Ok(written(1, 2)));
}

pub async fn any_appends_to_new_and_existing_streams(h: &impl Harness) {
    let store = h.store();
    let s = stream("any");
    let first = store.append(&s, ExpectedRevision::Any, events(2)).await;
    assert_eq!(first, Ok(written(0, 1)));
    let second = store.append(&s, ExpectedRevision::Any, events(1)).await;
    assert_eq!(second, Ok(written(2, 2)));
    assert_eq!(revisions(&read_all(store, &s).await), [0, 1, 2]);
}

pub async fn empty_batch_only_checks_the_expected_revision(h: &impl Harness) {
    let store = h.store();
    let missing = stream("empty-missing");
    let result = store
        .append(&missing, ExpectedRevision::NoStream, Vec::new())
        .await
        .expect("an empty batch on a missing stream expected missing");
    assert!(!result.written);
    assert_eq!(
        store.last_revision(&missing).await,
        Ok(None),
        "an empty batch does not create the stream"
    );
    let refused = store
        .append(&missing, ExpectedRevision::StreamExists, Vec::new())
        .await;
    assert_eq!(
        refused,
        Err(wrong(&missing, ExpectedRevision::StreamExists, None))
    );

    let s = stream("empty");
    append_ok(store, &s, ExpectedRevision::NoStream, events(3)).await;
    for expected in [
        ExpectedRevision::Any,
        ExpectedRevision::StreamExists,
        ExpectedRevision::Exact(2),
    ] {
        let result = store.append(&s, expected, Vec::new()).await;
        assert_eq!(
            result,
            Ok(repeated(2, 2)),
            "empty batch expecting {expected}"
        );
    }
    let refused = store
        .append(&s, ExpectedRevision::Exact(1), Vec::new())
        .await;
    assert_eq!(refused, Err(wrong(&s, ExpectedRevision::Exact(1), Some(2))));
    assert_eq!(read_all(store, &s).await.len(), 3);
}

pub async fn repeated_batch_returns_the_original_revisions_and_writes_nothing(h: &impl Harness) {
    let store = h.store();
    let s = stream("repeat");
    let first_batch = events(3);
    let second_batch = events(2);
    append_ok(store, &s, ExpectedRevision::NoStream, first_batch.clone()).await;
    append_ok(store, &s, ExpectedRevision::Exact(2), second_batch.clone()).await;
    let before = read_all(store, &s).await;

    // A retry after a lost reply carries the expected revision of the first try: now stale.
    for expected in [
        ExpectedRevision::NoStream,
        ExpectedRevision::Exact(0),
        ExpectedRevision::Any,
    ] {
        let result = store.append(&s, expected, first_batch.clone()).await;
        assert_eq!(result, Ok(repeated(0, 2)), "repeat expecting {expected}");
    }
    let result = store
        .append(&s, ExpectedRevision::Exact(2), second_batch.clone())
        .await;
    assert_eq!(result, Ok(repeated(3, 4)));
    let result = store
        .append(&s, ExpectedRevision::Any, vec![first_batch[1].clone()])
        .await;
    assert_eq!(
        result,
        Ok(repeated(1, 1)),
        "a run inside a stored batch repeats"
    );

    assert_eq!(read_all(store, &s).await, before, "a repeat writes nothing");
}

pub async fn partial_duplicate_is_rejected_and_nothing_is_written(h: &impl Harness) {
    let store = h.store();
    let s = stream("partial");
    let stored = events(3);
    append_ok(store, &s, ExpectedRevision::NoStream, stored.clone()).await;
    let fresh = event(99);
    let (a, b, c) = (&stored[0], &stored[1], &stored[2]);

    let cases = [
        ("stored then new", vec![c.clone(), fresh.clone()]),
        ("new then stored", vec![fresh.clone(), a.clone()]),
        ("stored out of order", vec![b.clone(), a.clone()]),
        ("stored with a gap", vec![a.clone(), c.clone()]),
        ("one new id twice", vec![fresh.clone(), fresh.clone()]),
    ];
    for (why, batch) in cases {
        let batch_ids = ids_of(&batch);
        match store.append(&s, ExpectedRevision::Any, batch).await {
            Err(StoreError::PartialDuplicate { stream, id }) => {
                assert_eq!(stream, s, "{why}");
                assert!(batch_ids.contains(&id), "{why}: {id} is not in the batch");
            }
            other => panic!("{why}: expected a partial duplicate, got {other:?}"),
        }
    }
    assert_eq!(read_all(store, &s).await.len(), 3, "nothing was written");
    let result = store
        .append(&s, ExpectedRevision::Exact(2), vec![fresh])
        .await;
    assert_eq!(
        result,
        Ok(written(3, 3)),
        "the new event was not written before"
    );
}

pub async fn read_forwards(h: &impl Harness) {
    let store = h.store();
    let s = stream("forwards");
    append_ok(store, &s, ExpectedRevision::NoStream, events(10)).await;
    let cases: [(ReadFrom, usize, &[u64]); 8] = [
        (ReadFrom::Start, 3, &[0, 1, 2]),
        (ReadFrom::Start, 100, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (ReadFrom::Start, 0, &[]),
        (ReadFrom::Revision(4), 3, &[4, 5, 6]),
        (ReadFrom::Revision(8), 5, &[8, 9]),
        (ReadFrom::Revision(9), 1, &[9]),
        (ReadFrom::Revision(10), 5, &[]),
        (ReadFrom::End, 5, &[]),
    ];
    for (from, max, want) in cases {
        let got = store
            .read(&s, Direction::Forwards, from, max)
            .await
            .expect("read forwards");
        assert_eq!(revisions(&got), want, "forwards from {from:?}, max {max}");
    }
}

pub async fn read_backwards(h: &impl Harness) {
    let store = h.store();
    let s = stream("backwards");
    append_ok(store, &s, ExpectedRevision::NoStream, events(10)).await;
    let cases: [(ReadFrom, usize, &[u64]); 7] = [
        (ReadFrom::End, 3, &[9, 8, 7]),
        (ReadFrom::End, 0, &[]),
        (ReadFrom::Revision(4), 3, &[4, 3, 2]),
        (ReadFrom::Revision(1), 5, &[1, 0]),
        (ReadFrom::Revision(100), 2, &[9, 8]),
        (ReadFrom::Start, 5, &[0]),
        (ReadFrom::End, 100, &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ];
    for (from, max, want) in cases {
        let got = store
            .read(&s, Direction::Backwards, from, max)
            .await
            .expect("read backwards");
        assert_eq!(revisions(&got), want, "backwards from {from:?}, max {max}");
    }
}

pub async fn read_pages_reads_forwards_to_the_end_in_whole_pages(h: &impl Harness) {
    let store = h.store();
    let s = stream("pages");
    let pages_of = |from| pages(store, &s, from);
    assert!(
        pages_of(0).await.is_empty(),
        "a missing stream has no pages"
    );

    // Exactly one page: the read after it finds nothing, and yields no empty page.
    append_ok(store, &s, ExpectedRevision::NoStream, events(READ_PAGE)).await;
    let pages = pages_of(0).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [READ_PAGE]);

    append_ok(
        store,
        &s,
        ExpectedRevision::Exact(READ_PAGE as u64 - 1),
        events(READ_PAGE + 5),
    )
    .await;
    let total = 2 * READ_PAGE as u64 + 5;
    let pages = pages_of(0).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [READ_PAGE, READ_PAGE, 5]
    );
    assert_eq!(revisions(&pages.concat()), (0..total).collect::<Vec<_>>());

    let from = total - 3;
    assert_eq!(
        revisions(&pages_of(from).await.concat()),
        [from, from + 1, from + 2]
    );
    assert!(pages_of(total).await.is_empty(), "nothing after the end");
}

pub async fn missing_stream_reads_empty(h: &impl Harness) {
    let store = h.store();
    let s = stream("missing");
    for direction in [Direction::Forwards, Direction::Backwards] {
        for from in [ReadFrom::Start, ReadFrom::End, ReadFrom::Revision(3)] {
            let got = store.read(&s, direction, from, 10).await;
            assert_eq!(got, Ok(Vec::new()), "{direction:?} from {from:?}");
        }
    }
    assert_eq!(store.last_revision(&s).await, Ok(None));
}

pub async fn revisions_are_contiguous_from_zero(h: &impl Harness) {
    let store = h.store();
    let s = stream("contiguous");
    let mut expected = ExpectedRevision::NoStream;
    for size in [1, 4, 2, 7] {
        let result = append_ok(store, &s, expected, events(size)).await;
        expected = ExpectedRevision::Exact(result.last_revision);
    }
    let all = read_all(store, &s).await;
    assert_eq!(revisions(&all), (0..14).collect::<Vec<_>>());
    assert!(all.iter().all(|e| e.stream == s));
}

pub async fn events_round_trip_byte_exact(h: &impl Harness) {
    let store = h.store();
    let s = stream("round-trip");
    let sent = vec![
        NewEvent {
            id: Uuid::now_v7(),
            event_type: "DeploymentStarted".to_string(),
            data: br#"{"ticket":"PAY-1","note":"caf\u00e9 \"quoted\""}"#.to_vec(),
            metadata: "{\"actor\":\"ol\u{e9}g\",\"emoji\":\"\u{1f680}\"}"
                .as_bytes()
                .to_vec(),
        },
        NewEvent {
            id: Uuid::now_v7(),
            event_type: "Typ\u{e9} with spaces \u{2713}".to_string(),
            data: (0..=255).collect(),
            metadata: Vec::new(),
        },
        NewEvent {
            id: Uuid::from_u128(u128::MAX),
            event_type: "x".to_string(),
            data: vec![0, 0, 0],
            metadata: vec![0xff, 0x00, 0xfe],
        },
    ];
    let before = Utc::now() - chrono::Duration::minutes(1);
    append_ok(store, &s, ExpectedRevision::NoStream, sent.clone()).await;
    let after = Utc::now() + chrono::Duration::minutes(1);

    let got = read_all(store, &s).await;
    assert_eq!(got.len(), sent.len());
    for ((revision, sent), got) in (0..).zip(&sent).zip(&got) {
        assert_eq!(
            (&got.stream, got.revision, got.id, &got.event_type),
            (&s, revision, sent.id, &sent.event_type)
        );
        assert_eq!(got.data, sent.data, "data of revision {revision}");
        assert_eq!(
            got.metadata, sent.metadata,
            "metadata of revision {revision}"
        );
        assert!(
            before <= got.created && got.created <= after,
            "created {} is the store's clock",
            got.created
        );
    }
}

pub async fn subscribe_from_start_yields_history_then_caught_up_then_live(h: &impl Harness) {
    let store = h.store();
    let s = stream("subscribe");
    let history = events(3);
    append_ok(store, &s, ExpectedRevision::NoStream, history.clone()).await;

    let mut sub = store.subscribe(&s, None).await.expect("subscribe");
    assert_eq!(ids(&next_events(&mut sub, 3).await), ids_of(&history));
    assert_eq!(next_item(&mut sub).await, SubscriptionItem::CaughtUp);

    let live = events(2);
    append_ok(store, &s, ExpectedRevision::Exact(2), live.clone()).await;
    let got = next_events(&mut sub, 2).await;
    assert_eq!(revisions(&got), [3, 4]);
    assert_eq!(ids(&got), ids_of(&live));

    let more = events(1);
    append_ok(store, &s, ExpectedRevision::Exact(4), more.clone()).await;
    let got = next_events(&mut sub, 1).await;
    assert_eq!((got[0].revision, got[0].id), (5, more[0].id));
    assert_quiet(&mut sub).await;
}

pub async fn subscribe_after_a_revision(h: &impl Harness) {
    let store = h.store();
    let s = stream("subscribe-after");
    append_ok(store, &s, ExpectedRevision::NoStream, events(5)).await;

    let mut sub = store.subscribe(&s, Some(2)).await.expect("subscribe");
    assert_eq!(revisions(&next_events(&mut sub, 2).await), [3, 4]);
    assert_eq!(next_item(&mut sub).await, SubscriptionItem::CaughtUp);
    append_ok(store, &s, ExpectedRevision::Exact(4), events(1)).await;
    assert_eq!(revisions(&next_events(&mut sub, 1).await), [5]);

    let mut at_end = store.subscribe(&s, Some(5)).await.expect("subscribe");
    assert_eq!(next_item(&mut at_end).await, SubscriptionItem::CaughtUp);
    append_ok(store, &s, ExpectedRevision::Exact(5), events(1)).await;
    assert_eq!(revisions(&next_events(&mut at_end, 1).await), [6]);
    assert_quiet(&mut at_end).await;
}

pub async fn subscribe_to_a_missing_stream(h: &impl Harness) {
    let store = h.store();
    let s = stream("subscribe-missing");
    let mut sub = store.subscribe(&s, None).await.expect("subscribe");
    assert_eq!(next_item(&mut sub).await, SubscriptionItem::CaughtUp);
    append_ok(store, &s, ExpectedRevision::NoStream, events(2)).await;
    assert_eq!(revisions(&next_events(&mut sub, 2).await), [0, 1]);
    assert_quiet(&mut sub).await;
}

pub async fn subscribe_pages_through_a_long_history(h: &impl Harness) {
    let store = h.store();
    let s = stream("subscribe-long");
    // Whole multiples of common page sizes, so the last page read while catching up is empty.
    let total: u64 = 2000;
    append_ok(
        store,
        &s,
        ExpectedRevision::NoStream,
        events(total as usize),
    )
    .await;

    let mut sub = store.subscribe(&s, None).await.expect("subscribe");
    let history = next_events(&mut sub, total as usize).await;
    assert_eq!(revisions(&history), (0..total).collect::<Vec<_>>());
    assert_eq!(next_item(&mut sub).await, SubscriptionItem::CaughtUp);
    append_ok(store, &s, ExpectedRevision::Exact(total - 1), events(1)).await;
    assert_eq!(revisions(&next_events(&mut sub, 1).await), [total]);
}

pub async fn subscription_sees_appends_through_a_second_handle(h: &impl Harness) {
    let store = h.store();
    let other = h.second_handle().await;
    let s = stream("subscribe-other");
    append_ok(store, &s, ExpectedRevision::NoStream, events(1)).await;

    let mut sub = store.subscribe(&s, None).await.expect("subscribe");
    assert_eq!(revisions(&next_events(&mut sub, 1).await), [0]);
    assert_eq!(next_item(&mut sub).await, SubscriptionItem::CaughtUp);

    let live = events(3);
    append_ok(&*other, &s, ExpectedRevision::Exact(0), live.clone()).await;
    let got = next_events(&mut sub, 3).await;
    assert_eq!(revisions(&got), [1, 2, 3]);
    assert_eq!(ids(&got), ids_of(&live));
    assert_quiet(&mut sub).await;
}

pub async fn streams_are_isolated(h: &impl Harness) {
    let store = h.store();
    let a = stream("isolated");
    // One name a prefix of the other, to catch matching by prefix.
    let b = format!("{a}-2");
    append_ok(store, &a, ExpectedRevision::NoStream, events(2)).await;
    append_ok(store, &b, ExpectedRevision::NoStream, events(3)).await;

    let in_a = read_all(store, &a).await;
    let in_b = read_all(store, &b).await;
    assert_eq!(revisions(&in_a), [0, 1]);
    assert_eq!(revisions(&in_b), [0, 1, 2]);
    assert!(in_a.iter().all(|e| e.stream == a));
    assert!(in_b.iter().all(|e| e.stream == b));
    assert_eq!(store.last_revision(&a).await, Ok(Some(1)));

    let mut sub = store.subscribe(&a, None).await.expect("subscribe");
    assert_eq!(revisions(&next_events(&mut sub, 2).await), [0, 1]);
    assert_eq!(next_item(&mut sub).await, SubscriptionItem::CaughtUp);
    append_ok(store, &b, ExpectedRevision::Exact(2), events(1)).await;
    assert_quiet(&mut sub).await;
}

// --- helpers ---

/// A stream name no other case, run, or backend user has used.
fn stream(what: &str) -> String {
    format!("conformance-{what}-{}", Uuid::now_v7().simple())
}

pub fn event(n: usize) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "TestEvent".to_string(),
        data: format!(r#"{{"n":{n}}}"#).into_bytes(),
        metadata: br#"{"by":"conformance"}"#.to_vec(),
    }
}

pub fn events(count: usize) -> Vec<NewEvent> {
    (0..count).map(event).collect()
}

pub fn written(first_revision: u64, last_revision: u64) -> AppendResult {
    AppendResult {
        first_revision,
        last_revision,
        written: true,
    }
}

pub fn repeated(first_revision: u64, last_revision: u64) -> AppendResult {
    AppendResult {
        first_revision,
        last_revision,
        written: false,
    }
}

fn wrong(stream: &str, expected: ExpectedRevision, actual: Option<u64>) -> StoreError {
    StoreError::WrongExpectedRevision {
        stream: stream.to_string(),
        expected,
        actual,
    }
}

async fn append_ok(
    store: &dyn EventStore,
    stream: &str,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
) -> AppendResult {
    let result = store
        .append(stream, expected, events)
        .await
        .unwrap_or_else(|e| panic!("append to {stream} expecting {expected}: {e}"));
    assert!(result.written, "append to {stream} wrote nothing");
    result
}

async fn read_all(store: &dyn EventStore, stream: &str) -> Vec<RecordedEvent> {
    store
        .read(stream, Direction::Forwards, ReadFrom::Start, usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("read {stream}: {e}"))
}

async fn pages(store: &dyn EventStore, stream: &str, from: u64) -> Vec<Vec<RecordedEvent>> {
    store
        .read_pages(stream, from)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("read pages of {stream}: {e}"))
}

fn revisions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.revision).collect()
}

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn ids_of(events: &[NewEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

async fn next_item(sub: &mut Subscription) -> SubscriptionItem {
    match tokio::time::timeout(DELIVERY, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("subscription yielded nothing in {DELIVERY:?}"),
    }
}

async fn next_events(sub: &mut Subscription, count: usize) -> Vec<RecordedEvent> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match next_item(sub).await {
            SubscriptionItem::Event(e) => got.push(e),
            SubscriptionItem::CaughtUp => {
                panic!("CaughtUp after {} of {count} events", got.len())
            }
        }
    }
    got
}

/// No duplicate, no stray event, no second `CaughtUp`.
async fn assert_quiet(sub: &mut Subscription) {
    if let Ok(item) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("expected nothing more, got {item:?}");
    }
}
