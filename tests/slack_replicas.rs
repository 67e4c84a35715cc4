//! Two `dobrobot serve` replicas on one SQLite ledger and one (fake) Slack. The replica that
//! records a request is killed with SIGKILL while its post of the release message is in
//! flight; the other brings Slack to the ledger's state within seconds, once, without any
//! further command: the release messages are a projection of the ledger, not work that dies
//! with the process that started it.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dobrobot::store::{self, Direction, ReadFrom};
use fake_slack::FakeSlack;
use serde_json::Value;

use support::serve::{Serve, dobrobot, free_port, healthy};
use support::slack::{CHANNEL, SECRET, sign, slash_command, text_of, top_level_posts};

/// How soon the surviving replica must have repaired Slack after the kill.
const REPAIR: Duration = Duration::from_secs(5);

/// A `dobrobot serve` on the ledger in `dir`, answering Slack's HTTP requests on `port`.
fn serve(dir: &Path, slack: &FakeSlack, port: u16) -> Serve {
    dobrobot(dir)
        .arg("serve")
        .env_remove("SLACK_APP_TOKEN")
        .env("SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN)
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("SLACK_API_URL", slack.api_url())
        .env("DOBROBOT_SLACK_CHANNEL", CHANNEL)
        .env("DOBROBOT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("serve-{port}.log"))).expect("a log"))
        .spawn()
        .map(Serve)
        .expect("start dobrobot serve")
}

/// The records of the Slack stream, as JSON.
async fn slack_records(db: &str) -> Vec<Value> {
    let store = store::open(db).await.expect("open the ledger");
    store
        .read(
            "dobrobot-slack-test",
            Direction::Forwards,
            ReadFrom::Start,
            10_000,
        )
        .await
        .expect("read the Slack stream")
        .iter()
        .map(|e| serde_json::from_slice(&e.data).expect("JSON"))
        .collect()
}

#[tokio::test]
async fn a_replica_killed_mid_post_is_repaired_by_the_other_once() {
    let slack = Arc::new(FakeSlack::start().await);
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    std::fs::write(
        dir.path().join("dobrobot.toml"),
        format!(
            "environment = \"test\"\nstore = \"{db}\"\n\
             tracker_url = \"https://tracker.example.com/browse/\"\n\
             [roles]\napprovers = [\"S0APPROVERS\"]\nadmins = [\"S0ADMINS\"]\n\
             [services]\nPAY = [\"billing\"]\n"
        ),
    )
    .expect("write the config");
    let http = reqwest::Client::new();

    // Replica A takes the request; its post of the release message never gets an answer.
    let a_port = free_port();
    let a = serve(dir.path(), &slack, a_port);
    healthy(&http, a_port).await;
    slack.stall("chat.postMessage", 1);
    let body = slash_command("U0BOB", "dobro #PAY-1 https://wiki/x fix rounding", "1.2.3");
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let response = http
        .post(format!("http://127.0.0.1:{a_port}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &timestamp)
        .header("x-slack-signature", sign(SECRET, &timestamp, &body))
        .body(body)
        .send()
        .await
        .expect("A answers");
    assert_eq!(response.status(), 200);
    let stalled = slack
        .wait_stalled("chat.postMessage", Duration::from_secs(10))
        .await;
    assert!(text_of(&stalled).contains("PAY-1"), "{stalled}");
    let claims: Vec<Value> = slack_records(&db)
        .await
        .into_iter()
        .filter(|r| r["type"] == "StepClaimed")
        .collect();
    let claimant = claims[0]["replica"]
        .as_str()
        .expect("a replica")
        .to_string();
    assert!(
        claimant.contains(&format!("/{}/", a.id())),
        "A claimed the step: {claimant}"
    );

    // Replica B starts, and A dies in the middle of its Slack call.
    let b_port = free_port();
    let b = serve(dir.path(), &slack, b_port);
    healthy(&http, b_port).await;
    let killed = Instant::now();
    drop(a); // SIGKILL

    // B posts the release message and the approvers' notice, once, with no further command.
    let posted = slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == CHANNEL && p.get("thread_ts").is_none(),
            REPAIR,
        )
        .await;
    slack
        .wait_for(
            "chat.postMessage",
            |p| text_of(p).contains("waits for your approval"),
            REPAIR,
        )
        .await;
    let repaired = killed.elapsed();
    assert!(repaired < REPAIR, "repaired after {repaired:?}");
    assert!(
        text_of(&posted).contains("Waiting for approval"),
        "{posted}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(b);

    assert_eq!(
        top_level_posts(&slack, CHANNEL).len(),
        1,
        "{:#?}",
        slack.calls()
    );
    let notices = slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|p| text_of(p).contains("waits for your approval"))
        .count();
    assert_eq!(notices, 1);
    let records = slack_records(&db).await;
    let taken_over = records
        .iter()
        .filter(|r| r["type"] == "StepClaimed" && r["replica"] != claimant.as_str())
        .count();
    assert!(taken_over >= 1, "B took the step over: {records:#?}");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "StepShown" && r["revision"] == 0),
        "{records:#?}"
    );
}
