//! Two `dobrobot serve` replicas on one SQLite ledger, both with the sinks configured, against
//! the local stand-ins of Grafana, PagerDuty and a webhook receiver. The replica holding the
//! delivery lease is killed with SIGKILL while its webhook request is in flight and while
//! `dobrobot chat` records more deployments; the other takes the lease over once it runs out
//! and delivers the rest. Every marker arrives; a marker arrives twice only if it was in
//! flight at the kill (the receiver answered, or was about to, and the dead replica never
//! recorded it); the two replicas never held the lease at once, and each delivery was recorded
//! by the replica holding it.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dobrobot::store::{self, Direction, ReadFrom};
use serde_json::Value;

use support::serve::{Serve, free_port, healthy};
use support::sinks::{
    FakeSinks, GRAFANA_TOKEN, ROUTING_KEY, Receiver, WEBHOOK_SECRET, WEBHOOK_SECRET_ENV,
};

/// `dobrobot` with the sinks' secrets in its environment.
fn dobrobot(dir: &Path) -> Command {
    let mut command = support::serve::dobrobot(dir);
    command
        .env("GRAFANA_TOKEN", GRAFANA_TOKEN)
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .env(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET);
    command
}

fn serve(dir: &Path, port: u16) -> Serve {
    dobrobot(dir)
        .arg("serve")
        .env("DOBROBOT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("serve-{port}.log"))).expect("a log"))
        .spawn()
        .map(Serve)
        .expect("start dobrobot serve")
}

/// `dobrobot chat --as WHO TEXT`, which must be recorded.
async fn chat(dir: &Path, who: &str, text: &str) {
    let mut command = tokio::process::Command::from(dobrobot(dir));
    let output = command
        .args(["chat", "--as", who, text])
        .output()
        .await
        .expect("run dobrobot chat");
    assert!(
        output.status.success(),
        "{who}: {text}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A deployment of `ticket`, from the request to `end` (its last command, in full).
async fn deployment(dir: &Path, ticket: &str, end: &str) {
    chat(
        dir,
        "bob",
        &format!("dobro #{ticket} https://wiki/x fix no_need_admin"),
    )
    .await;
    chat(dir, "alice", &format!("accept {ticket}")).await;
    chat(dir, "bob", &format!("dep start {ticket}")).await;
    chat(dir, "bob", end).await;
}

async fn read(db: &str, stream: &str) -> Vec<(String, Value, uuid::Uuid)> {
    let store = store::open(db).await.expect("open the ledger");
    store
        .read(stream, Direction::Forwards, ReadFrom::Start, 10_000)
        .await
        .expect("read")
        .into_iter()
        .map(|e| {
            let data = serde_json::from_slice(&e.data).expect("JSON");
            (e.event_type, data, e.id)
        })
        .collect()
}

/// The process id in a replica's name (`host/pid/random`).
fn pid_of(replica: &str) -> u32 {
    replica
        .split('/')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("a replica name with a process id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_holder_killed_mid_delivery_is_replaced_and_nothing_is_lost() {
    let sinks = FakeSinks::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    std::fs::write(
        dir.path().join("dobrobot.toml"),
        format!(
            "environment = \"test\"\nstore = \"{db}\"\n\
             tracker_url = \"https://tracker.example.com/browse/\"\n\
             [roles]\napprovers = [\"alice\"]\nadmins = [\"oleg\"]\n\
             [services]\nPAY = [\"billing\"]\n\
             [sinks]\nattempts = 5\nlease = \"2s\"\ntimeout = \"5s\"\nretry_delay = \"1s\"\n\
             [sinks.grafana]\nurl = \"{url}\"\n\
             [sinks.pagerduty]\nurl = \"{url}\"\n\
             [[sinks.webhooks]]\nname = \"ops\"\nurl = \"{url}/hooks/ops\"\nsecret_env = \"{WEBHOOK_SECRET_ENV}\"\n",
            url = sinks.url()
        ),
    )
    .expect("write the config");
    let http = reqwest::Client::new();
    let ports = [free_port(), free_port()];
    let mut replicas: HashMap<u32, Serve> = HashMap::new();
    for port in ports {
        let serve = serve(dir.path(), port);
        replicas.insert(serve.0.id(), serve);
        healthy(&http, port).await;
    }

    // The webhook answers slowly: its request is in flight when the holder dies.
    sinks.slow(Receiver::Webhook, Duration::from_millis(1500));
    deployment(dir.path(), "PAY-1", "dep finish PAY-1").await;
    sinks
        .wait("the first webhook request", |s| {
            !s.received(Receiver::Webhook).is_empty()
        })
        .await;
    let records = read(&db, "dobrobot-deliveries-test").await;
    let holder = records
        .iter()
        .rev()
        .find(|(t, _, _)| t == "LeaseTaken")
        .map(|(_, r, _)| r["replica"].as_str().expect("a replica").to_string())
        .expect("a lease was taken");
    let mut killed = replicas
        .remove(&pid_of(&holder))
        .expect("the holder is one of the replicas");
    killed.0.kill().expect("SIGKILL the lease holder");
    let _ = killed.0.wait();
    // What each receiver had seen when the holder died: the only markers it may see twice (one
    // answered, or in flight, before its delivery was recorded).
    let seen_at_kill = |receiver| -> Vec<String> {
        sinks
            .received(receiver)
            .iter()
            .filter_map(|r| match receiver {
                Receiver::Webhook => r
                    .headers
                    .get("x-dobrobot-delivery")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                _ => r.body["payload"]["custom_details"]["event_id"]
                    .as_str()
                    .map(str::to_string),
            })
            .collect()
    };
    let in_flight: HashMap<&'static str, Vec<String>> = [
        ("webhook", seen_at_kill(Receiver::Webhook)),
        ("pagerduty", seen_at_kill(Receiver::PagerDuty)),
    ]
    .into();

    // More deployments are recorded while the lease runs out.
    deployment(dir.path(), "PAY-2", "dep rollback PAY-2 error rate up").await;
    deployment(dir.path(), "PAY-3", "dep finish PAY-3").await;
    let ledger = read(&db, "dobrobot-ledger-test").await;
    let markers: Vec<String> = ledger
        .iter()
        .filter(|(t, _, _)| t.starts_with("Deployment"))
        .map(|(_, _, id)| id.to_string())
        .collect();
    assert_eq!(markers.len(), 6);

    let deadline = Instant::now() + Duration::from_secs(30);
    let count = |receiver| {
        let mut ids: HashMap<String, usize> = HashMap::new();
        for r in sinks.accepted(receiver) {
            let id = match receiver {
                Receiver::Webhook => r.headers["x-dobrobot-delivery"]
                    .to_str()
                    .unwrap_or("")
                    .to_string(),
                _ => r.body["payload"]["custom_details"]["event_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            };
            *ids.entry(id).or_default() += 1;
        }
        ids
    };
    loop {
        let (hooks, changes) = (count(Receiver::Webhook), count(Receiver::PagerDuty));
        if markers
            .iter()
            .all(|m| hooks.contains_key(m) && changes.contains_key(m))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: webhook {hooks:?}, pagerduty {changes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for any repeat to show.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // At least once, each; twice only what was in flight at the kill.
    for (receiver, name) in [
        (Receiver::Webhook, "webhook"),
        (Receiver::PagerDuty, "pagerduty"),
    ] {
        let ids = count(receiver);
        let in_flight = &in_flight[name];
        for marker in &markers {
            let n = ids.get(marker).copied().unwrap_or(0);
            assert!(n >= 1, "{receiver:?}: {marker} lost");
            if n > 1 {
                assert!(
                    n == 2 && in_flight.contains(marker),
                    "{receiver:?}: {marker} arrived {n} times, not seen before the kill ({in_flight:?})"
                );
            }
        }
        assert!(
            ids.keys().all(|id| markers.contains(id)),
            "{receiver:?}: {ids:?}"
        );
    }
    // Grafana found its own annotations by their event tags: three regions, no repeats.
    let annotations = sinks.annotations();
    assert_eq!(annotations.len(), 3, "{annotations:#?}");
    assert!(
        annotations.iter().all(|a| a.get("timeEnd").is_some()),
        "{annotations:#?}"
    );
    assert_eq!(sinks.bad_signatures(), 0);

    // The lease: never held by two at once; every record by the replica holding it.
    let records = read(&db, "dobrobot-deliveries-test").await;
    let mut lease: Option<(String, chrono::DateTime<chrono::Utc>)> = None;
    let mut holders = std::collections::BTreeSet::new();
    for (kind, record, _) in &records {
        let replica = record["replica"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "LeaseTaken" => {
                let at: chrono::DateTime<chrono::Utc> =
                    serde_json::from_value(record["at"].clone()).expect("at");
                let until = serde_json::from_value(record["until"].clone()).expect("until");
                if let Some((previous, previous_until)) = &lease
                    && *previous != replica
                {
                    assert!(
                        at >= *previous_until,
                        "{replica} took a live lease of {previous}"
                    );
                }
                lease = Some((replica.clone(), until));
                holders.insert(replica);
            }
            "Delivered" | "DeadLettered" => {
                let (holder, _) = lease.as_ref().expect("a record under a lease");
                assert_eq!(&replica, holder, "recorded by a replica without the lease");
            }
            _ => {}
        }
    }
    assert!(holders.contains(&holder), "{holders:?}");
    assert!(
        holders.len() >= 2,
        "the survivor never took over: {holders:?}"
    );
    drop(replicas);
}
