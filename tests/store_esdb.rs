//! The EventStoreDB backend against the wire-level double (`tests/esdb-double`): the conformance
//! suite, each case on a fresh double, then what only this backend has to get right: conflicts
//! and repeats seen by other writers, catch-up subscriptions that resume after the server went
//! away, the reply a command gets while the server is unreachable or not the leader, and the
//! ledger end to end. Every test name contains "esdb", so `cargo test esdb` runs them all.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dobrobot::answer::ReplyKind;
use dobrobot::app::{App, Settings};
use dobrobot::bot::Bot;
use dobrobot::config::{Config, ConflictGroupConfig, Roles};
use dobrobot::domain::HistoryFilter;
use dobrobot::domain::{GroupName, RoleEntry};
use dobrobot::envelope::{Actor, Source};
use dobrobot::follower::Follower;
use dobrobot::ledger::{self, Decision, Ledger, LedgerError, Options, Submission};
use dobrobot::models::StoredModels;
use dobrobot::render::Renderer;
use dobrobot::store::esdb::EsdbStore;
use dobrobot::store::{
    self, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, StoreError, Subscription,
    SubscriptionItem,
};
use dobrobot::verify;
use esdb_double::Double;
use futures::StreamExt;
use support::conformance::{Harness, event, events, repeated, written};
use support::fixtures::SEED_FLOW;
use uuid::Uuid;

struct Esdb {
    double: Double,
    store: EsdbStore,
}

#[async_trait]
impl Harness for Esdb {
    async fn start() -> Self {
        let double = Double::start().await;
        let store = open(&double).await;
        Esdb { double, store }
    }

    fn store(&self) -> &dyn EventStore {
        &self.store
    }

    async fn second_handle(&self) -> Box<dyn EventStore> {
        Box::new(open(&self.double).await)
    }
}

/// The suite's case names say nothing of the backend; the module puts "esdb" in their paths.
mod esdb {
    use crate::support::conformance::conformance_suite;

    conformance_suite!(super::Esdb);
}

async fn open(double: &Double) -> EsdbStore {
    EsdbStore::open(&double.url())
        .await
        .expect("open the EventStoreDB store")
}

/// How long a command may take to be answered while EventStoreDB is unreachable.
const OUTAGE_REPLY: Duration = Duration::from_millis(3500);
/// How long a subscriber may take to see what it is owed.
const DELIVERY: Duration = Duration::from_secs(10);

fn stream(what: &str) -> String {
    format!("esdb-{what}-{}", Uuid::now_v7().simple())
}

async fn next_item(sub: &mut Subscription) -> Result<SubscriptionItem, StoreError> {
    match tokio::time::timeout(DELIVERY, sub.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the subscription ended without an error"),
        Err(_) => panic!("the subscription yielded nothing in {DELIVERY:?}"),
    }
}

async fn next_revision(sub: &mut Subscription) -> u64 {
    match next_item(sub).await {
        Ok(SubscriptionItem::Event(e)) => e.revision,
        other => panic!("expected an event, got {other:?}"),
    }
}

// --- conflicts and repeats -------------------------------------------------------------------

#[tokio::test]
async fn esdb_conflict_with_another_writer_reports_the_revision_it_wrote() {
    let double = Double::start().await;
    let (a, b) = (open(&double).await, open(&double).await);
    let s = stream("conflict");

    a.append(&s, ExpectedRevision::NoStream, events(2))
        .await
        .expect("a creates the stream");
    // b has never seen the stream: its first append learns it from the server.
    let refused = b.append(&s, ExpectedRevision::NoStream, events(1)).await;
    assert_eq!(
        refused,
        Err(StoreError::WrongExpectedRevision {
            stream: s.clone(),
            expected: ExpectedRevision::NoStream,
            actual: Some(1),
        })
    );
    assert_eq!(
        b.append(&s, ExpectedRevision::Exact(1), events(1)).await,
        Ok(written(2, 2))
    );
    // a still believes the stream ends at 1.
    let refused = a.append(&s, ExpectedRevision::Exact(1), events(3)).await;
    assert_eq!(
        refused,
        Err(StoreError::WrongExpectedRevision {
            stream: s.clone(),
            expected: ExpectedRevision::Exact(1),
            actual: Some(2),
        })
    );
    // `Any` never conflicts: it goes on from wherever the stream is.
    assert_eq!(
        a.append(&s, ExpectedRevision::Any, events(1)).await,
        Ok(written(3, 3))
    );
    assert_eq!(double.events(&s).len(), 4);
}

#[tokio::test]
async fn esdb_repeat_by_another_writer_is_recognised_by_id_and_writes_nothing() {
    let double = Double::start().await;
    let (a, b) = (open(&double).await, open(&double).await);
    let s = stream("repeat");
    let batch = events(3);
    a.append(&s, ExpectedRevision::NoStream, batch.clone())
        .await
        .expect("a writes the batch");
    a.append(&s, ExpectedRevision::Exact(2), events(2))
        .await
        .expect("a writes more");

    // A redelivery through another handle, with the expected revision of the first try.
    for expected in [
        ExpectedRevision::NoStream,
        ExpectedRevision::Any,
        ExpectedRevision::Exact(0),
    ] {
        let result = b.append(&s, expected, batch.clone()).await;
        assert_eq!(result, Ok(repeated(0, 2)), "expecting {expected}");
    }
    let mixed = vec![batch[2].clone(), event(9)];
    assert!(matches!(
        b.append(&s, ExpectedRevision::Any, mixed).await,
        Err(StoreError::PartialDuplicate { id, .. }) if id == batch[2].id
    ));
    assert_eq!(double.events(&s).len(), 5, "nothing was written twice");
}

#[tokio::test]
async fn esdb_same_ids_raced_by_two_writers_are_written_once_and_the_loser_is_told() {
    // Two replicas decide the same redelivered command at the same revision: same ids, different
    // bytes (their clocks differ). EventStoreDB answers the second append with the success of an
    // idempotent write; the backend must still say that it wrote nothing.
    let double = Double::start().await;
    let (a, b) = (open(&double).await, open(&double).await);
    let s = stream("race");
    a.append(&s, ExpectedRevision::NoStream, events(1))
        .await
        .expect("the stream exists");
    // b has read the stream, so it knows every id up to revision 0 and appends at once.
    let seen = b
        .read(&s, Direction::Forwards, ReadFrom::Start, 10)
        .await
        .expect("b reads the stream");
    assert_eq!(seen.len(), 1);

    // A name-based id, as the ledger derives from a delivery: the same for both replicas.
    let id = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("slack:{s}").as_bytes());
    let draft = |at: &str| NewEvent {
        id,
        event_type: "Redelivered".to_string(),
        data: format!(r#"{{"recorded_at":"{at}"}}"#).into_bytes(),
        metadata: b"{}".to_vec(),
    };
    let first = a
        .append(&s, ExpectedRevision::Exact(0), vec![draft("09:00:00.001")])
        .await;
    let second = b
        .append(&s, ExpectedRevision::Exact(0), vec![draft("09:00:00.002")])
        .await;
    assert_eq!(first, Ok(written(1, 1)));
    assert_eq!(second, Ok(repeated(1, 1)));
    let stored = double.events(&s);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].data, br#"{"recorded_at":"09:00:00.001"}"#);
}

#[tokio::test]
async fn esdb_events_travel_with_their_ids_json_content_type_and_custom_metadata() {
    let double = Double::start().await;
    let store = open(&double).await;
    let s = stream("wire");
    let json = event(1);
    let binary = NewEvent {
        data: vec![0xff, 0x00, b'{'],
        ..event(2)
    };
    store
        .append(
            &s,
            ExpectedRevision::NoStream,
            vec![json.clone(), binary.clone()],
        )
        .await
        .expect("append");
    let stored = double.events(&s);
    assert_eq!(
        stored
            .iter()
            .map(|e| (e.id, e.content_type.as_str(), &e.data, &e.custom_metadata))
            .collect::<Vec<_>>(),
        [
            (json.id, "application/json", &json.data, &json.metadata),
            (
                binary.id,
                "application/octet-stream",
                &binary.data,
                &binary.metadata
            ),
        ]
    );
}

// --- subscriptions ----------------------------------------------------------------------------

#[tokio::test]
async fn esdb_subscription_catches_up_then_goes_live_and_ends_with_an_error_when_dropped() {
    let double = Double::start().await;
    let store = open(&double).await;
    let writer = open(&double).await;
    let s = stream("subscription");
    store
        .append(&s, ExpectedRevision::NoStream, events(3))
        .await
        .expect("history");

    let mut sub = store.subscribe(&s, None).await.expect("subscribe");
    for want in 0..3 {
        assert_eq!(next_revision(&mut sub).await, want);
    }
    assert_eq!(next_item(&mut sub).await, Ok(SubscriptionItem::CaughtUp));
    writer
        .append(&s, ExpectedRevision::Exact(2), events(2))
        .await
        .expect("live");
    assert_eq!(next_revision(&mut sub).await, 3);
    assert_eq!(next_revision(&mut sub).await, 4);

    double.faults().drop_subscriptions();
    assert!(
        matches!(next_item(&mut sub).await, Err(StoreError::Unavailable(_))),
        "a dropped subscription says so"
    );
    assert!(sub.next().await.is_none(), "and then ends");

    // The consumer subscribes again from the last revision it applied: nothing twice, no gap.
    writer
        .append(&s, ExpectedRevision::Exact(4), events(1))
        .await
        .expect("written while nobody listens");
    let mut again = store.subscribe(&s, Some(4)).await.expect("resubscribe");
    assert_eq!(next_revision(&mut again).await, 5);
    assert_eq!(next_item(&mut again).await, Ok(SubscriptionItem::CaughtUp));
}

/// Collects the revisions a projection is fed.
/// The revisions in the follower's history, once it holds `count` of them (or time is up).
async fn wait_for(follower: &Follower, count: usize) -> Vec<u64> {
    let deadline = Instant::now() + DELIVERY;
    loop {
        let stored = follower.followed().stored();
        let now: Vec<u64> = stored
            .read(|r| r.history(&HistoryFilter::default(), None, None, usize::MAX))
            .unwrap()
            .items
            .iter()
            .map(|e| e.revision)
            .collect();
        if now.len() >= count || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn esdb_projection_resumes_after_the_double_restarts_without_gap_or_duplicate() {
    let mut double = Double::start().await;
    let url = double.url();
    let store = store::open(&url).await.expect("open");
    let ledger = open_ledger(&store, "resume").await;
    let stream = ledger::stream_name("resume");
    for (who, text) in &SEED_FLOW[..2] {
        submit(&ledger, who, text).await.expect("recorded");
    }

    let dir = tempfile::tempdir().unwrap();
    let stored = StoredModels::open(dir.path().join("resume.models")).unwrap();
    let follower = Follower::start(Arc::clone(&store), stream.clone(), stored, true);
    assert_eq!(wait_for(&follower, 2).await, [0, 1]);

    double.stop().await;
    let refused = submit(&ledger, SEED_FLOW[2].0, SEED_FLOW[2].1).await;
    assert!(
        refused.is_err(),
        "nothing is recorded while the server is down"
    );
    // Long enough for the follower to fail and try again at least once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    double.restart().await;

    for (who, text) in &SEED_FLOW[2..] {
        submit(&ledger, who, text)
            .await
            .unwrap_or_else(|e| panic!("`{text}` after the restart: {e}"));
    }
    assert_eq!(wait_for(&follower, 5).await, [0, 1, 2, 3, 4]);
    // Nothing more comes: no event applied twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wait_for(&follower, 6).await, [0, 1, 2, 3, 4]);
    assert!(!follower.followed().progress().failed);
}

// --- unreachable and not-leader servers -------------------------------------------------------

fn config(double: &Double, dir: &tempfile::TempDir) -> Config {
    Config {
        environment: "outage".to_string(),
        store: double.url(),
        models: Some(dir.path().join("outage.models").display().to_string()),
        roles: Roles {
            approvers: vec![RoleEntry::parse("alice").unwrap()],
            admins: vec![RoleEntry::parse("oleg").unwrap()],
        },
        services: BTreeMap::from([("PAY".to_string(), vec!["billing".to_string()])]),
        conflict_groups: vec![ConflictGroupConfig {
            name: GroupName::parse("backend-core").unwrap(),
            services: vec!["billing".to_string()],
        }],
        ..Config::default()
    }
}

fn actor(name: &str) -> Actor {
    support::fixtures::actor(name, Source::Slack)
}

/// Sends one command through the bot; the reply's kind and text, and how long it took.
async fn say(bot: &Bot, who: &str, text: &str) -> (ReplyKind, String, Duration) {
    let started = Instant::now();
    let answer = bot.handle(actor(who), text, None).await;
    let text = Renderer::plain(None).answer(&answer);
    (answer.kind(), text, started.elapsed())
}

fn assert_not_recorded_in_time(reply: (ReplyKind, String, Duration), why: &str) {
    let (kind, text, took) = reply;
    assert_eq!(kind, ReplyKind::Failed, "{why}: {text}");
    assert!(text.contains("not recorded"), "{why}: {text}");
    assert!(took < OUTAGE_REPLY, "{why}: answered after {took:?}");
}

#[tokio::test]
async fn esdb_outage_reply_says_nothing_was_recorded_and_the_bot_recovers_by_itself() {
    let mut double = Double::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(config(&double, &dir), Settings::chat())
        .await
        .expect("build the app on the double");
    let bot = &*app.bot;
    let stream = ledger::stream_name("outage");
    let (kind, text, _) = say(bot, SEED_FLOW[0].0, SEED_FLOW[0].1).await;
    assert_eq!(kind, ReplyKind::Done, "{text}");

    double.stop().await;
    assert_not_recorded_in_time(
        say(bot, SEED_FLOW[1].0, SEED_FLOW[1].1).await,
        "server stopped",
    );
    double.restart().await;
    let (kind, text, _) = say(bot, SEED_FLOW[1].0, SEED_FLOW[1].1).await;
    assert_eq!(kind, ReplyKind::Done, "after the restart: {text}");

    double.faults().set_unavailable(true);
    assert_not_recorded_in_time(
        say(bot, SEED_FLOW[2].0, SEED_FLOW[2].1).await,
        "server not ready",
    );
    double.faults().set_unavailable(false);
    let (kind, text, _) = say(bot, SEED_FLOW[2].0, SEED_FLOW[2].1).await;
    assert_eq!(kind, ReplyKind::Done, "once ready again: {text}");

    double.faults().set_delay(Duration::from_secs(10));
    assert_not_recorded_in_time(
        say(bot, SEED_FLOW[3].0, SEED_FLOW[3].1).await,
        "server too slow",
    );
    double.faults().set_delay(Duration::ZERO);
    let (kind, text, _) = say(bot, SEED_FLOW[3].0, SEED_FLOW[3].1).await;
    assert_eq!(kind, ReplyKind::Done, "once fast again: {text}");

    // The policy the app recorded when it started, then each command once.
    assert_eq!(
        double.events(&stream).len(),
        5,
        "each command recorded once"
    );
    let report = verify::verify(&app.store, &stream)
        .await
        .expect("the ledger verifies");
    assert_eq!(report.events, 5);
}

#[tokio::test]
async fn esdb_store_opened_while_the_server_is_down_works_once_it_is_up() {
    // A kurrentdb client whose first connection fails stays closed; the store rebuilds it.
    let mut double = Double::start().await;
    let url = double.url();
    double.stop().await;
    let store = store::open(&url).await.expect("opening does not connect");
    let s = stream("late");

    let started = Instant::now();
    let refused = store
        .append(&s, ExpectedRevision::NoStream, events(1))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(started.elapsed() < OUTAGE_REPLY);
    assert!(matches!(
        store
            .read(&s, Direction::Forwards, ReadFrom::Start, 10)
            .await,
        Err(StoreError::Unavailable(_))
    ));

    double.restart().await;
    assert_eq!(
        store
            .append(&s, ExpectedRevision::NoStream, events(1))
            .await,
        Ok(written(0, 0))
    );
}

#[tokio::test]
async fn esdb_not_leader_is_unavailable_in_time_and_writes_nothing() {
    let double = Double::start().await;
    let store = open(&double).await;
    let s = stream("not-leader");
    store
        .append(&s, ExpectedRevision::NoStream, events(1))
        .await
        .expect("append to the leader");

    double.faults().set_not_leader(true);
    let started = Instant::now();
    let refused = store
        .append(&s, ExpectedRevision::Exact(0), events(1))
        .await;
    match &refused {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("not the leader"), "{why}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < OUTAGE_REPLY);
    assert!(matches!(
        store.subscribe(&s, None).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(double.events(&s).len(), 1);

    double.faults().set_not_leader(false);
    assert_eq!(
        store
            .append(&s, ExpectedRevision::Exact(0), events(1))
            .await,
        Ok(written(1, 1))
    );
}

#[tokio::test]
async fn esdb_ledger_command_while_not_leader_is_not_recorded_then_is() {
    let double = Double::start().await;
    let store = store::open(&double.url()).await.expect("open");
    let ledger = open_ledger(&store, "leader").await;
    double.faults().set_not_leader(true);
    let started = Instant::now();
    match submit(&ledger, SEED_FLOW[0].0, SEED_FLOW[0].1).await {
        Err(LedgerError::Store(StoreError::Unavailable(_))) => {}
        other => panic!("expected the store unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < OUTAGE_REPLY);
    double.faults().set_not_leader(false);
    submit(&ledger, SEED_FLOW[0].0, SEED_FLOW[0].1)
        .await
        .expect("recorded once the node leads again");
    assert_eq!(double.events(&ledger::stream_name("leader")).len(), 1);
}

// --- the ledger end to end ----------------------------------------------------------------------

async fn open_ledger(store: &Arc<dyn EventStore>, environment: &str) -> Ledger {
    let policy = support::fixtures::policy();
    Ledger::open(
        Arc::clone(store),
        ledger::stream_name(environment),
        Arc::new(policy),
        Options::default(),
    )
    .await
    .expect("open the ledger")
}

/// A command typed in Slack, redelivered under `delivery` if given.
fn submission(who: &str, text: &str, delivery: Option<&str>) -> Submission {
    Submission {
        actor: actor(who),
        delivery: delivery.map(String::from),
        ..support::fixtures::submission(who, text)
    }
}

async fn submit(ledger: &Ledger, who: &str, text: &str) -> Result<ledger::Outcome, LedgerError> {
    ledger.submit(submission(who, text, None)).await
}

#[tokio::test]
async fn esdb_ledger_seed_flow_is_recorded_and_verifies() {
    let double = Double::start().await;
    let store = store::open(&double.url()).await.expect("open");
    let ledger = open_ledger(&store, "e2e").await;
    let stream = ledger::stream_name("e2e");
    for (revision, (who, text)) in (0..).zip(SEED_FLOW) {
        let outcome = submit(&ledger, who, text)
            .await
            .unwrap_or_else(|e| panic!("`{text}`: {e}"));
        assert!(
            matches!(outcome.result, Decision::Accepted(_)),
            "`{text}`: {:?}",
            outcome.result
        );
        assert_eq!(outcome.revision, revision, "`{text}`");
    }
    let stored = double.events(&stream);
    assert_eq!(
        stored
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        [
            "ReleaseRequested",
            "ReleaseApproved",
            "AdminJoined",
            "DeploymentStarted",
            "DeploymentFinished"
        ]
    );
    assert!(stored.iter().all(|e| e.content_type == "application/json"));
    let report = verify::verify(&store, &stream).await.expect("verify");
    assert_eq!(report.events, 5);

    // A second process loads the same ledger from the server and goes on from it.
    let other = store::open(&double.url()).await.expect("open again");
    let replica = open_ledger(&other, "e2e").await;
    assert_eq!(replica.snapshot().revision, Some(4));
    assert!(replica.snapshot().state.releases.is_empty());
}

#[tokio::test]
async fn esdb_ledger_delivery_recorded_by_one_replica_is_not_recorded_again_by_another() {
    let double = Double::start().await;
    let url = double.url();
    let (store_a, store_b) = (
        store::open(&url).await.expect("open a"),
        store::open(&url).await.expect("open b"),
    );
    let replica_a = open_ledger(&store_a, "replicas").await;
    let replica_b = open_ledger(&store_b, "replicas").await;
    let text = SEED_FLOW[0].1;
    let first = replica_a
        .submit(submission("bob", text, Some("slack:Ev1")))
        .await
        .expect("recorded by a");
    let again = replica_b
        .submit(submission("bob", text, Some("slack:Ev1")))
        .await
        .expect("answered by b");
    assert!(matches!(first.result, Decision::Accepted(_)));
    assert_eq!(again.result, Decision::AlreadyRecorded);

    // b goes on from the stored chain, not from its own draft of the repeat.
    let accepted = replica_b
        .submit(submission("alice", SEED_FLOW[1].1, None))
        .await
        .expect("accepted by b");
    assert_eq!(accepted.revision, 1);
    let stream = ledger::stream_name("replicas");
    assert_eq!(double.events(&stream).len(), 2);
    verify::verify(&store_a, &stream)
        .await
        .expect("the chain is whole");
}

// --- connection strings -------------------------------------------------------------------------

#[tokio::test]
async fn esdb_connection_strings_choose_the_backend_and_bad_ones_say_why_without_the_password() {
    for url in [
        "esdb://localhost:2113?tls=false",
        "esdb+discover://cluster.example.com:2113",
        "kurrentdb://admin:changeit@localhost:2113?tls=true&tlsVerifyCert=false",
        "kurrentdb+discover://cluster.example.com",
        "esdb://db1:2113,db2:2113,db3:2113?nodePreference=leader",
    ] {
        assert!(store::open(url).await.is_ok(), "{url}");
    }

    for (url, says) in [
        ("esdb://admin:s3cret@localhost:notaport", "invalid port"),
        ("esdb://admin:s3cret@localhost:2113?tls=perhaps", "tls"),
        (
            "esdb://admin:s3cret@localhost:2113?nodePreference=nearest",
            "nearest",
        ),
        ("kurrentdb://admin:s3cret@localhost:2113/some/path", "path"),
    ] {
        match store::open(url).await {
            Err(error @ StoreError::BadUrl { .. }) => {
                let message = error.to_string();
                assert!(!message.contains("s3cret"), "{message}");
                assert!(message.to_lowercase().contains(says), "{message}");
            }
            Err(other) => panic!("{url}: expected a bad URL, got {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
    match store::open("postgres://admin:s3cret@localhost/ledger").await {
        Err(error @ StoreError::BadUrl { .. }) => {
            let message = error.to_string();
            assert!(!message.contains("s3cret"), "{message}");
            assert!(message.contains("esdb://"), "{message}");
        }
        Err(other) => panic!("expected a bad URL, got {other}"),
        Ok(_) => panic!("postgres accepted"),
    }
}
