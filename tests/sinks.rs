//! Release markers end to end, through the app as `serve` builds it, against local stand-ins of
//! Grafana's annotations API, PagerDuty's change events endpoint and a webhook receiver that
//! checks the signature (`support::sinks`): what each receives for a deployment, retries after
//! 500 and 429 (with `Retry-After` honoured), dead letters, a restart, a first start on an old
//! ledger, and a missing secret. The SIGKILL of the delivering replica is in
//! `sinks_replicas.rs`, with real processes.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dobrobot::answer::Answer;
use dobrobot::app::{App, AppError, Settings};
use dobrobot::config::{Config, Roles};
use dobrobot::envelope::{Actor, Source};
use dobrobot::sinks::SinkError;
use dobrobot::store::{Direction, EventStore, ReadFrom};
use fake_slack::FakeSlack;
use serde_json::Value;
use uuid::Uuid;

use support::app::{TestApp, settings, slack_config};
use support::fixtures::{role, u};
use support::sinks::{Fail, FakeSinks, Receiver};

const DELIVERIES: &str = "dobrobot-deliveries-test";

/// The test config without Slack (the markers do not need it), alice approving, oleg the admin,
/// and `sinks` as given.
fn config(dir: &tempfile::TempDir, slack: &FakeSlack, sinks: &FakeSinks) -> Config {
    let mut config = slack_config(slack, dir);
    config.slack.bot_token = None;
    config.slack.signing_secret = None;
    config.roles = Roles {
        approvers: vec![role("alice")],
        admins: vec![role("oleg")],
    };
    config.sinks = sinks.config();
    config
}

struct Setup {
    app: TestApp,
    sinks: FakeSinks,
}

async fn start() -> Setup {
    start_with(|_| {}).await
}

async fn start_with(configure: impl FnOnce(&mut Config)) -> Setup {
    let sinks = FakeSinks::start().await;
    let slack = Arc::new(FakeSlack::start().await);
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let mut config = config(&dir, &slack, &sinks);
    configure(&mut config);
    let app = TestApp::build(slack, dir, config, settings()).await;
    Setup { app, sinks }
}

fn actor(who: &str) -> Actor {
    Actor {
        id: u(who),
        name: who.to_string(),
        source: Source::Cli,
    }
}

/// Runs each (user, command) through the app's bot; each must be recorded.
async fn run(app: &App, steps: &[(&str, &str)]) {
    for (who, text) in steps {
        let answer = app.bot.handle(actor(who), text, None).await;
        assert!(
            matches!(answer, Answer::Accepted { .. }),
            "{who}: {text} -> {answer:?}"
        );
    }
}

fn request(ticket: &str) -> [(&'static str, String); 2] {
    [
        (
            "bob",
            format!("dobro #{ticket} https://wiki/x fix no_need_admin"),
        ),
        ("alice", format!("accept {ticket}")),
    ]
}

async fn ready_and_start(app: &App, ticket: &str) {
    let [a, b] = request(ticket);
    let start = format!("dep start {ticket}");
    run(app, &[(a.0, &a.1), (b.0, &b.1), ("bob", &start)]).await;
}

/// The ledger's deployment events: (type, id), in order.
async fn markers(store: &Arc<dyn EventStore>, stream: &str) -> Vec<(String, Uuid)> {
    store
        .read(stream, Direction::Forwards, ReadFrom::Start, 10_000)
        .await
        .expect("read the ledger")
        .into_iter()
        .filter(|e| e.event_type.starts_with("Deployment"))
        .map(|e| (e.event_type, e.id))
        .collect()
}

/// The deliveries stream's records, as JSON.
async fn deliveries(store: &Arc<dyn EventStore>) -> Vec<Value> {
    store
        .read(DELIVERIES, Direction::Forwards, ReadFrom::Start, 10_000)
        .await
        .expect("read the deliveries stream")
        .iter()
        .map(|e| serde_json::from_slice(&e.data).expect("JSON"))
        .collect()
}

/// How many times each event id reached the webhook (accepted), by its delivery header.
fn webhook_ids(sinks: &FakeSinks) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for r in sinks.accepted(Receiver::Webhook) {
        let id = r.headers["x-dobrobot-delivery"]
            .to_str()
            .expect("an id")
            .to_string();
        *ids.entry(id).or_default() += 1;
    }
    ids
}

fn pagerduty_ids(sinks: &FakeSinks) -> Vec<String> {
    sinks
        .accepted(Receiver::PagerDuty)
        .iter()
        .map(|r| {
            r.body["payload"]["custom_details"]["event_id"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("text");
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_deployment_is_a_grafana_region_a_pagerduty_change_and_a_signed_webhook() {
    let Setup { app, sinks } = start().await;
    ready_and_start(&app.app, "PAY-1").await;
    run(&app.app, &[("bob", "dep finish PAY-1")]).await;
    let ids = markers(&app.app.store, &app.app.stream).await;
    assert_eq!(ids.len(), 2);
    let (start_id, finish_id) = (ids[0].1.to_string(), ids[1].1.to_string());

    sinks
        .wait("both markers everywhere", |s| {
            s.accepted(Receiver::PagerDuty).len() == 2
                && s.accepted(Receiver::Webhook).len() == 2
                && s.accepted(Receiver::Grafana)
                    .iter()
                    .any(|r| r.method == "PATCH")
        })
        .await;

    // Grafana: looked up by the event's tag, posted, then patched into a region.
    let grafana: Vec<String> = sinks
        .accepted(Receiver::Grafana)
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        grafana,
        [
            "GET /api/annotations",
            "POST /api/annotations",
            "PATCH /api/annotations/1"
        ]
    );
    let annotations = sinks.annotations();
    assert_eq!(annotations.len(), 1, "{annotations:#?}");
    let region = &annotations[0];
    let tags: Vec<&str> = region["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for tag in ["dobrobot", "billing", "PAY-1", "finished"] {
        assert!(tags.contains(&tag), "{tag} missing from {tags:?}");
    }
    assert!(!tags.contains(&"started"), "{tags:?}");
    assert!(
        tags.contains(&format!("event:{start_id}").as_str()),
        "{tags:?}"
    );
    assert_eq!(region["dashboardUID"], "releases");
    let (time, end) = (region["time"].as_i64(), region["timeEnd"].as_i64());
    assert!(time.is_some() && end.is_some() && time <= end, "{region}");

    // PagerDuty: one change event per marker, the ledger id as the key.
    assert_eq!(pagerduty_ids(&sinks), [start_id.clone(), finish_id.clone()]);
    let change = &sinks.accepted(Receiver::PagerDuty)[1].body;
    assert_eq!(change["payload"]["source"], "dobrobot");
    assert_eq!(change["payload"]["custom_details"]["outcome"], "finished");
    assert_eq!(
        change["payload"]["custom_details"]["services"][0],
        "billing"
    );
    assert!(
        change["payload"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("PAY-1") && s.contains("finished")),
        "{change}"
    );
    assert_eq!(
        change["links"][0]["href"],
        "https://tracker.example.com/browse/PAY-1"
    );

    // The webhook: signed (the receiver checked it), the event as recorded, the id twice.
    let hooks = sinks.accepted(Receiver::Webhook);
    assert_eq!(sinks.bad_signatures(), 0);
    assert_eq!(hooks[0].headers["x-dobrobot-delivery"], start_id.as_str());
    assert_eq!(hooks[0].body["id"], start_id.as_str());
    assert_eq!(hooks[0].body["type"], "DeploymentStarted");
    assert_eq!(hooks[0].body["data"]["ticket"], "PAY-1");
    assert_eq!(hooks[0].body["metadata"]["actor"]["id"], "bob");
    assert_eq!(hooks[1].body["type"], "DeploymentFinished");
    assert_eq!(hooks[1].body["services"][0], "billing");
    // The receiver's check can fail: the same request with one byte changed is refused.
    let mut tampered = hooks[0].body.clone();
    tampered["ticket"] = Value::String("PAY-2".into());
    assert!(!support::sinks::signed(
        &hooks[0].headers,
        tampered.to_string().as_bytes()
    ));

    // Recorded once each (a record follows its receiver's answer: wait for the last one).
    let delivered = |records: &[Value]| {
        records
            .iter()
            .filter(|r| r["type"] == "Delivered" && !r["event_id"].is_null())
            .count()
    };
    let store = app.app.store.clone();
    support::fixtures::wait_until(|| {
        let store = store.clone();
        async move { delivered(&deliveries(&store).await) >= 6 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records = deliveries(&app.app.store).await;
    for sink in ["grafana", "pagerduty", "webhook:ops"] {
        let delivered: Vec<&Value> = records
            .iter()
            .filter(|r| r["type"] == "Delivered" && r["sink"] == sink && !r["event_id"].is_null())
            .collect();
        assert_eq!(delivered.len(), 2, "{sink}: {records:#?}");
    }
    assert!(records.iter().any(|r| r["type"] == "Annotated"
        && r["annotation_id"] == 1
        && r["start_event_id"] == start_id.as_str()));
}

#[tokio::test]
async fn a_rollback_closes_the_region_with_its_outcome_and_reason() {
    let Setup { app, sinks } = start().await;
    ready_and_start(&app.app, "PAY-1").await;
    run(&app.app, &[("bob", "dep rollback PAY-1 error rate up")]).await;
    sinks
        .wait("the rollback everywhere", |s| {
            s.accepted(Receiver::PagerDuty).len() == 2
                && s.accepted(Receiver::Webhook).len() == 2
                && s.annotations()
                    .first()
                    .is_some_and(|a| a.get("timeEnd").is_some())
        })
        .await;
    let region = &sinks.annotations()[0];
    assert!(
        region["tags"]
            .as_array()
            .expect("tags")
            .contains(&Value::from("rolled_back"))
    );
    assert!(
        region["text"]
            .as_str()
            .is_some_and(|t| t.contains("error rate up")),
        "{region}"
    );
    let change = &sinks.accepted(Receiver::PagerDuty)[1].body;
    assert_eq!(
        change["payload"]["custom_details"]["outcome"],
        "rolled_back"
    );
    assert_eq!(
        change["payload"]["custom_details"]["reason"],
        "error rate up"
    );
}

#[tokio::test]
async fn a_500_and_a_429_are_retried_and_retry_after_is_honoured() {
    let Setup { app, sinks } = start().await;
    sinks.fail_next(Receiver::PagerDuty, 1, Fail::Status500);
    sinks.fail_next(Receiver::Webhook, 1, Fail::TooMany(3));
    ready_and_start(&app.app, "PAY-1").await;
    let ids = markers(&app.app.store, &app.app.stream).await;
    let start_id = ids[0].1.to_string();

    sinks
        .wait("the start after the failures", |s| {
            s.accepted(Receiver::PagerDuty).len() == 1 && s.accepted(Receiver::Webhook).len() == 1
        })
        .await;
    let pagerduty = sinks.received(Receiver::PagerDuty);
    assert_eq!(pagerduty.len(), 2);
    assert!(pagerduty[0].failed && !pagerduty[1].failed);
    assert_eq!(pagerduty_ids(&sinks), [start_id.as_str()]);
    let hooks = sinks.received(Receiver::Webhook);
    assert_eq!(hooks.len(), 2);
    let waited = hooks[1].at - hooks[0].at;
    // The backoff alone would wait 1 to 2 s: only Retry-After makes it 3.
    assert!(
        waited >= Duration::from_millis(2900),
        "retried after {waited:?}"
    );
    assert_eq!(hooks[1].headers["x-dobrobot-delivery"], start_id.as_str());
    // Both are recorded as delivered, not dead-lettered.
    let records = deliveries(&app.app.store).await;
    assert!(
        !records.iter().any(|r| r["type"] == "DeadLettered"),
        "{records:#?}"
    );
    assert!(
        metric(
            &app,
            "dobrobot_sink_deliveries_total{sink=\"pagerduty\",outcome=\"retried\"}"
        )
        .await
            >= 1.0
    );
    assert!(
        metric(
            &app,
            "dobrobot_sink_deliveries_total{sink=\"webhook:ops\",outcome=\"retried\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_marker_failing_every_attempt_is_dead_lettered_and_later_ones_flow() {
    let Setup { app, sinks } = start().await;
    let dead_metric = "dobrobot_sink_dead_letters_total{sink=\"webhook:ops\"}";
    let before = metric(&app, dead_metric).await;
    // attempts = 3 in the test config: three 500s give the start up.
    sinks.fail_next(Receiver::Webhook, 3, Fail::Status500);
    ready_and_start(&app.app, "PAY-1").await;
    let start_id = markers(&app.app.store, &app.app.stream).await[0]
        .1
        .to_string();
    let store = app.app.store.clone();
    support::fixtures::wait_until(|| {
        let store = store.clone();
        async move {
            deliveries(&store)
                .await
                .iter()
                .any(|r| r["type"] == "DeadLettered")
        }
    })
    .await;
    let records = deliveries(&app.app.store).await;
    let dead: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "DeadLettered")
        .collect();
    assert_eq!(dead.len(), 1, "{records:#?}");
    assert_eq!(dead[0]["sink"], "webhook:ops");
    assert_eq!(dead[0]["event_id"], start_id.as_str());
    assert_eq!(dead[0]["attempts"], 3);
    assert!(
        dead[0]["error"].as_str().is_some_and(|e| e.contains("500")),
        "{}",
        dead[0]
    );
    assert_eq!(sinks.received(Receiver::Webhook).len(), 3);
    assert_eq!(metric(&app, dead_metric).await, before + 1.0);

    // The next marker flows, to the webhook too; the other sinks never noticed.
    run(&app.app, &[("bob", "dep finish PAY-1")]).await;
    sinks
        .wait("the finish", |s| {
            s.accepted(Receiver::Webhook).len() == 1 && s.accepted(Receiver::PagerDuty).len() == 2
        })
        .await;
    assert_eq!(
        sinks.accepted(Receiver::Webhook)[0].body["type"],
        "DeploymentFinished"
    );

    // A 400 is not worth retrying: dead-lettered at the first attempt, with the answer.
    sinks.fail_next(Receiver::PagerDuty, 1, Fail::BadRequest);
    ready_and_start(&app.app, "PAY-2").await;
    support::fixtures::wait_until(|| {
        let store = store.clone();
        async move {
            deliveries(&store)
                .await
                .iter()
                .any(|r| r["type"] == "DeadLettered" && r["sink"] == "pagerduty")
        }
    })
    .await;
    let records = deliveries(&app.app.store).await;
    let dead = records
        .iter()
        .find(|r| r["type"] == "DeadLettered" && r["sink"] == "pagerduty")
        .expect("a dead letter");
    assert_eq!(dead["attempts"], 1);
    assert!(
        dead["error"]
            .as_str()
            .is_some_and(|e| e.contains("400") && e.contains("unknown field")),
        "{dead}"
    );
}

#[tokio::test]
async fn a_restart_delivers_what_was_recorded_while_down_and_nothing_twice() {
    let Setup { app, sinks } = start().await;
    ready_and_start(&app.app, "PAY-1").await;
    sinks
        .wait("the first start", |s| {
            s.accepted(Receiver::Webhook).len() == 1
        })
        .await;
    let TestApp {
        app: first,
        slack,
        config,
        dir,
        ..
    } = app;
    first.stop().await;

    // While no serve runs, `chat` records a finish and a second deployment's start.
    let chat = App::build(config.clone(), Settings::chat())
        .await
        .expect("chat builds");
    run(&chat, &[("bob", "dep finish PAY-1")]).await;
    ready_and_start(&chat, "PAY-2").await;
    let ids = markers(&chat.store, &chat.stream).await;
    drop(chat);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sinks.accepted(Receiver::Webhook).len(),
        1,
        "nothing runs the sinks"
    );

    let again = TestApp::build(slack, dir, config, settings()).await;
    sinks
        .wait("what was recorded while down", |s| {
            s.accepted(Receiver::Webhook).len() >= 3
                && s.accepted(Receiver::PagerDuty).len() >= 3
                && s.annotations().len() >= 2
        })
        .await;
    // Time for a repeat to show, if there were one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expected: HashMap<String, usize> = ids.iter().map(|(_, id)| (id.to_string(), 1)).collect();
    assert_eq!(webhook_ids(&sinks), expected);
    let wanted: Vec<String> = ids.iter().map(|(_, id)| id.to_string()).collect();
    assert_eq!(pagerduty_ids(&sinks), wanted);
    // The restarted app remembered the start's annotation: PAY-1 is one region, PAY-2 a start.
    let annotations = sinks.annotations();
    assert_eq!(annotations.len(), 2, "{annotations:#?}");
    assert!(annotations[0].get("timeEnd").is_some(), "{annotations:#?}");
    assert!(annotations[1].get("timeEnd").is_none(), "{annotations:#?}");
    drop(again);
}

#[tokio::test]
async fn a_first_start_on_an_old_ledger_begins_at_its_end() {
    let sinks = FakeSinks::start().await;
    let slack = Arc::new(FakeSlack::start().await);
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let mut config = config(&dir, &slack, &sinks);
    let configured = std::mem::take(&mut config.sinks);
    // History from before the sinks were configured.
    let old = App::build(config.clone(), Settings::chat())
        .await
        .expect("chat builds");
    ready_and_start(&old, "PAY-1").await;
    run(&old, &[("bob", "dep finish PAY-1")]).await;
    drop(old);

    config.sinks = configured;
    let app = TestApp::build(slack, dir, config, settings()).await;
    let store = app.app.store.clone();
    support::fixtures::wait_until(|| {
        let store = store.clone();
        async move { deliveries(&store).await.len() >= 3 }
    })
    .await;
    let records = deliveries(&app.app.store).await;
    // The first checkpoint of each sink is the ledger's end: revision 4 of 0..=4 (the policy
    // recorded at the first start, then the release's four steps).
    for sink in ["grafana", "pagerduty", "webhook:ops"] {
        assert!(
            records.iter().any(|r| r["type"] == "Delivered"
                && r["sink"] == sink
                && r["revision"] == 4
                && r["event_id"].is_null()),
            "{sink}: {records:#?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        sinks.received(Receiver::Webhook).is_empty(),
        "history was replayed"
    );
    assert!(
        sinks.received(Receiver::PagerDuty).is_empty(),
        "history was replayed"
    );

    ready_and_start(&app.app, "PAY-2").await;
    sinks
        .wait("the new start", |s| {
            s.accepted(Receiver::Webhook).len() == 1
        })
        .await;
    assert_eq!(sinks.accepted(Receiver::Webhook)[0].body["ticket"], "PAY-2");
}

#[tokio::test]
async fn a_configured_sink_without_its_secret_stops_the_start() {
    let sinks = FakeSinks::start().await;
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = config(&dir, &slack, &sinks);
    config.sinks.webhooks[0].secret = None;
    let error = App::build(config, settings()).await.err().expect("refused");
    assert!(
        matches!(error, AppError::Sinks(SinkError::Config(_))),
        "{error}"
    );
    assert!(
        error.to_string().contains("DOBROBOT_TEST_WEBHOOK_SECRET"),
        "{error}"
    );
}

#[tokio::test]
async fn a_replica_that_stops_gives_its_lease_up_and_another_delivers_at_once() {
    // A lease far longer than the wait below: only a release lets the other replica deliver.
    let Setup { app, sinks } = start_with(|config| config.sinks.lease = "60s".into()).await;
    ready_and_start(&app.app, "PAY-1").await;
    sinks
        .wait("the first start", |s| {
            s.accepted(Receiver::Webhook).len() == 1
        })
        .await;
    let other = app.replica().await;
    let store = app.app.store.clone();
    app.app.stop().await;
    let records = deliveries(&store).await;
    assert_eq!(
        records.last().map(|r| r["type"].clone()),
        Some(Value::from("LeaseReleased")),
        "{records:#?}"
    );

    run(&other.app, &[("bob", "dep finish PAY-1")]).await;
    // `wait` gives up after 10 s, a sixth of the lease.
    sinks
        .wait("the finish, from the other replica", |s| {
            s.accepted(Receiver::Webhook).len() == 2
        })
        .await;
    let holders: Vec<Value> = deliveries(&store)
        .await
        .into_iter()
        .filter(|r| r["type"] == "LeaseTaken")
        .map(|r| r["replica"].clone())
        .collect();
    assert_eq!(
        holders.len(),
        2,
        "the first replica, then the other: {holders:?}"
    );
    assert_ne!(holders[0], holders[1]);
    drop(other);
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_holds_up_only_itself() {
    let Setup { app, sinks } = start().await;
    // PagerDuty asks for a long pause on the start; meanwhile the webhook gets the start and
    // then the finish recorded after it.
    sinks.fail_next(Receiver::PagerDuty, 1, Fail::TooMany(8));
    ready_and_start(&app.app, "PAY-1").await;
    sinks
        .wait("the start at the webhook", |s| {
            s.accepted(Receiver::Webhook).len() == 1
        })
        .await;
    run(&app.app, &[("bob", "dep finish PAY-1")]).await;
    let asked = std::time::Instant::now();
    sinks
        .wait("the finish at the webhook", |s| {
            s.accepted(Receiver::Webhook).len() == 2
        })
        .await;
    assert!(
        sinks.accepted(Receiver::PagerDuty).is_empty(),
        "PagerDuty is still waiting out its Retry-After"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the webhook did not wait for PagerDuty: {:?}",
        asked.elapsed()
    );
}
