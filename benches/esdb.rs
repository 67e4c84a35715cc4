//! The EventStoreDB backend's cost, measured against the EventStoreDB gRPC double on loopback:
//!
//! (a) appends through dobrobot's backend (`EsdbStore`, one event per append with an exact
//!     expected revision, as the ledger appends) against raw `kurrentdb` client appends of the
//!     same events to the same double, in the same run: the overhead ratio (target <= 1.2);
//! (b) the catch-up rate of the projections (Live, Deployments, History) from a 100,000-event
//!     ledger stream through the backend's catch-up subscription.
//!
//! `cargo bench --bench esdb`; `DOBROBOT_BENCH_APPENDS` (default 2,000) and
//! `DOBROBOT_BENCH_CATCHUP_EVENTS` (default 100,000) override the sizes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dobrobot::domain::{Event, ServiceName, TicketKey, UserId, WikiLink};
use dobrobot::envelope::{self, Actor, Context, GENESIS_HASH, Source};
use dobrobot::projections::{Deployments, History, Live, Projection};
use dobrobot::store::{self, EventStore, ExpectedRevision, NewEvent, SubscriptionItem};
use esdb_double::Double;
use futures::StreamExt;
use kurrentdb::{AppendToStreamOptions, Client, EventData, StreamState};
use serde_json::value::RawValue;
use uuid::Uuid;

const ROUNDS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A realistic ledger: each ticket requested, approved, started and finished, sealed in one
/// hash chain with increasing times.
fn ledger(events: usize) -> Vec<NewEvent> {
    let start = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).expect("a valid time");
    let services = ["billing", "api", "web", "search", "ledger"];
    let people = ["bob", "carol", "dave", "erin"];
    let mut prev = GENESIS_HASH.to_string();
    let mut out = Vec::with_capacity(events);
    let mut n = 0usize;
    while out.len() < events {
        let ticket = TicketKey::parse(&format!("PAY-{n}")).expect("a ticket");
        let requester = UserId::parse(people[n % people.len()]).expect("a user");
        let service = ServiceName::parse(services[n % services.len()]).expect("a service");
        let cycle = [
            Event::ReleaseRequested {
                ticket: ticket.clone(),
                requester: requester.clone(),
                services: vec![service.clone()],
                wiki: Some(WikiLink::parse("https://wiki.example.com/release").expect("a link")),
                comment: "a change worth shipping".to_string(),
                need_admin: false,
                tracker: None,
            },
            Event::ReleaseApproved {
                ticket: ticket.clone(),
                approver: UserId::parse("alice").expect("a user"),
            },
            Event::DeploymentStarted {
                ticket: ticket.clone(),
                by: requester.clone(),
                services: vec![service],
                conflict_groups: Vec::new(),
            },
            Event::DeploymentFinished {
                ticket,
                by: requester.clone(),
            },
        ];
        for (i, event) in cycle.iter().enumerate() {
            if out.len() == events {
                break;
            }
            let context = Context {
                actor: Actor {
                    id: requester.clone(),
                    name: requester.to_string(),
                    source: Source::Cli,
                },
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                command: format!("command {n}/{i}"),
                recorded_at: start + chrono::Duration::seconds(out.len() as i64),
            };
            let (sealed, hash) = envelope::seal(event, Uuid::now_v7(), &context, &prev);
            prev = hash;
            out.push(sealed);
        }
        n += 1;
    }
    out
}

fn raw_event(event: &NewEvent) -> EventData {
    let text = std::str::from_utf8(&event.data).expect("sealed data is UTF-8");
    let json = RawValue::from_string(text.to_string()).expect("sealed data is JSON");
    EventData::json(&event.event_type, &json)
        .expect("JSON serializes")
        .id(event.id)
        .metadata(event.metadata.clone().into())
}

fn expected(i: usize) -> ExpectedRevision {
    match i {
        0 => ExpectedRevision::NoStream,
        n => ExpectedRevision::Exact(n as u64 - 1),
    }
}

async fn ours(store: &Arc<dyn EventStore>, stream: &str, events: &[NewEvent]) -> Duration {
    let started = Instant::now();
    for (i, event) in events.iter().enumerate() {
        store
            .append(stream, expected(i), vec![event.clone()])
            .await
            .expect("append through the backend");
    }
    started.elapsed()
}

async fn raw(client: &Client, stream: &str, events: &[NewEvent]) -> Duration {
    let started = Instant::now();
    for (i, event) in events.iter().enumerate() {
        let state = match i {
            0 => StreamState::NoStream,
            n => StreamState::StreamRevision(n as u64 - 1),
        };
        let options = AppendToStreamOptions::default().stream_state(state);
        client
            .append_to_stream(stream, &options, raw_event(event))
            .await
            .expect("append through the raw client");
    }
    started.elapsed()
}

/// Subscribes from the start and applies every event to the projections until caught up.
async fn catch_up(store: &Arc<dyn EventStore>, stream: &str) -> (Duration, usize) {
    let (mut live, mut deployments, mut history) =
        (Live::default(), Deployments::default(), History::default());
    let started = Instant::now();
    let mut subscription = store.subscribe(stream, None).await.expect("subscribe");
    let mut applied = 0;
    while let Some(item) = subscription.next().await {
        match item.expect("a subscription item") {
            SubscriptionItem::Event(raw) => {
                let recorded = envelope::decode(&raw).expect("a dobrobot event");
                let mut all: [&mut dyn Projection; 3] = [&mut live, &mut deployments, &mut history];
                all.apply(&recorded);
                applied += 1;
            }
            SubscriptionItem::CaughtUp => break,
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(
        history.entries.len(),
        applied,
        "every event reached the history"
    );
    (elapsed, applied)
}

fn per_second(count: usize, time: Duration) -> String {
    let rate = count as f64 / time.as_secs_f64();
    let whole = rate.round() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let appends = env_usize("DOBROBOT_BENCH_APPENDS", 2_000);
    let catchup_events = env_usize("DOBROBOT_BENCH_CATCHUP_EVENTS", 100_000);
    let double = Double::start().await;
    println!("EventStoreDB double at {}", double.addr());
    println!(
        "- cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("- DOBROBOT_BENCH_APPENDS={appends}, DOBROBOT_BENCH_CATCHUP_EVENTS={catchup_events}");

    let store = store::open(&double.url()).await.expect("open the backend");
    let client = Client::new(double.url().parse().expect("the double's URL")).expect("a client");

    // Warm both connections up.
    let warm = ledger(10);
    ours(&store, "warm-ours", &warm).await;
    raw(&client, "warm-raw", &warm).await;

    let events = ledger(appends);
    let (mut best_ours, mut best_raw) = (Duration::MAX, Duration::MAX);
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always runs on a warmer double.
        let (o, r) = if round % 2 == 0 {
            let o = ours(&store, &format!("ours-{round}"), &events).await;
            (o, raw(&client, &format!("raw-{round}"), &events).await)
        } else {
            let r = raw(&client, &format!("raw-{round}"), &events).await;
            (ours(&store, &format!("ours-{round}"), &events).await, r)
        };
        println!(
            "(a) round {}/{ROUNDS}: backend {o:.2?}, raw client {r:.2?}",
            round + 1
        );
        best_ours = best_ours.min(o);
        best_raw = best_raw.min(r);
    }
    let overhead = best_ours.as_secs_f64() / best_raw.as_secs_f64();

    println!("(b) writing a {catchup_events}-event ledger ...");
    let stream = "dobrobot-ledger-bench";
    let big = ledger(catchup_events);
    for (i, chunk) in big.chunks(1000).enumerate() {
        let expected = match i {
            0 => ExpectedRevision::NoStream,
            n => ExpectedRevision::Exact((n * 1000) as u64 - 1),
        };
        store
            .append(stream, expected, chunk.to_vec())
            .await
            .expect("write the ledger");
    }
    let mut best_catchup = Duration::MAX;
    for round in 0..ROUNDS {
        let (time, applied) = catch_up(&store, stream).await;
        assert_eq!(
            applied, catchup_events,
            "the subscription delivered the whole ledger"
        );
        println!("(b) round {}/{ROUNDS}: caught up in {time:.2?}", round + 1);
        best_catchup = best_catchup.min(time);
    }

    println!();
    println!(
        "| measurement | dobrobot | raw `kurrentdb` client (same run) | ratio | target | met |"
    );
    println!("|---|---:|---:|---:|---:|:---:|");
    println!(
        "| (a) {appends} single-event appends, exact expected revision | {} appends/s | {} appends/s | {overhead:.2} | <= 1.2 | {} |",
        per_second(appends, best_ours),
        per_second(appends, best_raw),
        if overhead <= 1.2 { "yes" } else { "no" }
    );
    println!(
        "| (b) projections catching up from a {catchup_events}-event stream | {} events/s | | | | |",
        per_second(catchup_events, best_catchup)
    );
    println!("\nBest of {ROUNDS} rounds each; (a) alternates which side runs first.");
}
