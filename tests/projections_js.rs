//! The EventStoreDB server-side projections (`projections/*.js`) against the Rust projections.
//!
//! A real `Ledger` on a SQLite file records a long, random but seeded run of chat commands
//! (requests, approvals, admins, starts, finishes, rollbacks, rejections, cancellations,
//! freezes, and the refusals they earn), with the system's reminders among them. The stored
//! events are dumped as JSON lines and fed to each projection, as `dobrobot projections
//! install` would install it, under Node in `tests/js/harness.js`, which provides
//! EventStoreDB's projection API. Then:
//!
//! - the queue projection's state equals `domain::queue` after every event it handles;
//! - by-ticket links exactly the events the audit history lists for each ticket;
//! - by-service links exactly the events the audit history lists for each service, apart from
//!   freezes of everything and their ends (see `projections/by-service.js`).
//!
//! Node comes from PATH. Without it the test fails in CI (`CI` is set) and is skipped elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
mod support;

use dobrobot::domain::reminders::system_actor;
use dobrobot::domain::state::{AdminPresence, Freeze, Release, Stage};
use dobrobot::domain::{
    Command, ConflictGroup, Event, GroupName, HistoryFilter, Input, Policy, PolicyCause,
    PolicyProposal, Reason, ReminderKind, ServiceName, State, TicketKey, UserId, parse, queue,
    start_blockers,
};
use dobrobot::envelope::{self, Actor, Recorded, Source};
use dobrobot::ledger::{self, Clock, Ledger, Options, Submission};
use dobrobot::projections::{History, Projection as _};
use dobrobot::store::esdb::projections::{self as esdb_projections, Action, Projection};
use dobrobot::store::{self, Direction, ReadFrom, RecordedEvent};
use esdb_double::Double;
use serde_json::{Value, json};
use support::fixtures::{s, u as user};
use tempfile::TempDir;

/// Commands in the generated ledger.
const COMMANDS: usize = 900;
const SEED: u64 = 0x5eed_d0b0_7001;

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn the_js_queue_equals_the_rust_queue_at_every_revision() {
    let Some(node) = node() else { return };
    let run = Run::shared();
    let out = run.harness(&node, Projection::Queue, &["--every"]);
    let compared = assert_same_queue(&out, &run.policy, &run.events);
    assert!(compared > COMMANDS / 2, "compared {compared}");
    assert!(out["links"].as_array().is_some_and(Vec::is_empty));
    run.assert_queue_coverage();
}

/// Facts `decide` never produces, as a ledger written by another version might hold: the JS
/// must fold them as `State::evolve` does.
#[test]
fn the_js_queue_folds_odd_facts_as_the_rust_state_does() {
    let Some(node) = node() else { return };
    let t = |key: &str| TicketKey::parse(key).expect("a ticket");
    let s = |name: &str| ServiceName::parse(name).expect("a service");
    let requested = |key: &str, services: &[&str], need_admin: bool| Event::ReleaseRequested {
        ticket: t(key),
        requester: user("dana"),
        services: services.iter().map(|n| s(n)).collect(),
        wiki: None,
        comment: String::new(),
        need_admin,
        tracker: None,
    };
    let events = vec![
        requested("PAY-1", &["billing"], false),
        requested("API-2", &["api"], true),
        // An admin joins a release that needs none.
        Event::AdminJoined {
            ticket: t("PAY-1"),
            admin: user("oleg"),
        },
        // Started without approval: the starter counts as the approver.
        Event::DeploymentStarted {
            ticket: t("PAY-1"),
            by: user("oleg"),
            services: vec![s("billing")],
            conflict_groups: vec![GroupName::parse("backend-core").unwrap()],
        },
        // Approved while deploying.
        Event::ReleaseApproved {
            ticket: t("PAY-1"),
            approver: user("bob"),
        },
        // A second request for an open ticket replaces it at the back of the line.
        requested("API-2", &["api", "web"], false),
        // Facts about tickets that are not open.
        Event::ReleaseApproved {
            ticket: t("WEB-9"),
            approver: user("bob"),
        },
        Event::AdminJoined {
            ticket: t("WEB-9"),
            admin: user("ivan"),
        },
        Event::DeploymentStarted {
            ticket: t("WEB-9"),
            by: user("ivan"),
            services: vec![s("web")],
            conflict_groups: vec![GroupName::parse("retired-group").unwrap()],
        },
        Event::ReleaseApproved {
            ticket: t("API-2"),
            approver: user("bob"),
        },
        // Rejecting a deploying release closes it but keeps its locks.
        Event::ReleaseRejected {
            ticket: t("PAY-1"),
            approver: user("bob"),
            reason: Reason::parse("late").expect("a reason"),
        },
        requested("PAY-3", &["billing"], false),
        Event::FreezeStarted {
            by: user("alice"),
            reason: Reason::parse("audit").expect("a reason"),
            services: Some(vec![s("cdn")]),
        },
        // A finish frees every lock its ticket holds, open or not.
        Event::DeploymentFinished {
            ticket: t("PAY-1"),
            by: user("oleg"),
        },
        Event::DeploymentRolledBack {
            ticket: t("WEB-9"),
            by: user("ivan"),
            reason: Reason::parse("bad").expect("a reason"),
        },
        Event::FreezeEnded { by: user("alice") },
        Event::FreezeEnded { by: user("alice") },
    ];
    let stream = ledger::stream_name("odd");
    let raw = sealed(&stream, &events);
    let dir = tempfile::tempdir().expect("a temp dir");
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, dump(&raw)).expect("write the events");
    let recorded: Vec<Recorded> = raw
        .iter()
        .map(|r| envelope::decode(r).expect("decodes"))
        .collect();
    let policy = policy();
    let source = dir.path().join("queue.js");
    std::fs::write(&source, Projection::Queue.source(&stream, &policy)).expect("write");
    let out = run_harness(&node, &source, &events_file, &["--every"]);
    assert_eq!(assert_same_queue(&out, &policy, &recorded), events.len());
}

#[test]
fn by_ticket_links_what_the_history_lists_for_each_ticket() {
    let Some(node) = node() else { return };
    let run = Run::shared();
    let out = run.harness(&node, Projection::ByTicket, &["--emit"]);
    let links = run.links(&out);

    let tickets: BTreeSet<&TicketKey> =
        run.events.iter().filter_map(|r| r.event.ticket()).collect();
    let mut expected = BTreeMap::new();
    for ticket in tickets {
        let mut history = History::new(HistoryFilter {
            ticket: Some(ticket.clone()),
            ..HistoryFilter::default()
        });
        for recorded in &run.events {
            history.apply(recorded);
        }
        let revisions: Vec<u64> = history.entries.iter().map(|e| e.revision).collect();
        expected.insert(format!("dobrobot-ticket-{ticket}"), revisions);
    }
    assert_eq!(links, expected);
    let unlinked = run
        .events
        .iter()
        .filter(|r| r.event.ticket().is_none())
        .count();
    assert!(unlinked > 0, "the ledger has freezes, which name no ticket");
}

#[test]
fn by_service_links_what_the_history_lists_for_each_service() {
    let Some(node) = node() else { return };
    let run = Run::shared();
    let out = run.harness(&node, Projection::ByService, &["--emit"]);
    let links = run.links(&out);

    // Every service that could have a stream: configured, or named by any event.
    let mut universe: BTreeSet<ServiceName> = configured_services(&run.policy);
    for recorded in &run.events {
        match &recorded.event {
            Event::ReleaseRequested { services, .. }
            | Event::DeploymentStarted { services, .. }
            | Event::FreezeStarted {
                services: Some(services),
                ..
            } => universe.extend(services.iter().cloned()),
            _ => {}
        }
    }
    let mut expected = BTreeMap::new();
    for service in &universe {
        let mut history = History::new(HistoryFilter {
            service: Some(service.clone()),
            ..HistoryFilter::default()
        });
        // Where by-service differs from the history: a freeze of everything concerns the
        // services known when it starts, and an end the services of the freeze it ends.
        let mut known = configured_services(&run.policy);
        let mut state = State::default();
        let mut revisions = Vec::new();
        for recorded in &run.events {
            let listed = history.entries.len();
            history.apply(recorded);
            let listed = history.entries.len() > listed;
            let linked = match &recorded.event {
                Event::FreezeStarted { services: None, .. } => known.contains(service),
                Event::FreezeEnded { .. } => match &state.freeze {
                    Freeze::Off => false,
                    Freeze::On { services: None, .. } => known.contains(service),
                    Freeze::On {
                        services: Some(s), ..
                    } => s.contains(service),
                },
                _ => listed,
            };
            if linked {
                revisions.push(recorded.revision);
            }
            if let Event::ReleaseRequested { services, .. }
            | Event::DeploymentStarted { services, .. } = &recorded.event
            {
                known.extend(services.iter().cloned());
            }
            state.evolve(&recorded.event, recorded.metadata.recorded_at);
        }
        if !revisions.is_empty() {
            expected.insert(format!("dobrobot-service-{service}"), revisions);
        }
    }
    assert_eq!(links, expected);
    // `archive` is only in the config, never in the ledger: it hears of freezes of everything.
    assert!(
        expected.contains_key("dobrobot-service-archive"),
        "a freeze of everything reaches a service known only from config"
    );
}

#[test]
fn the_files_as_they_are_follow_the_default_environment_only() {
    let Some(node) = node() else { return };
    let run = Run::shared();
    // The repository's files select `dobrobot-ledger-prod`; this ledger is another
    // environment's, so nothing reaches them: `install` must write the stream in.
    for projection in Projection::ALL {
        let out = run_harness(
            &node,
            &repo().join(projection.file()),
            &run.events_file,
            &["--emit"],
        );
        assert!(
            out["links"].as_array().is_some_and(Vec::is_empty),
            "{projection}"
        );
    }
}

#[test]
fn the_harness_refuses_links_without_the_emit_setting() {
    let Some(node) = node() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let events = dir.path().join("events.jsonl");
    let line = json!({
        "stream": "dobrobot-ledger-prod", "revision": 0, "id": "0", "type": "ReleaseCancelled",
        "data": { "ticket": "PAY-1", "by": "bob" }, "metadata": {}
    });
    std::fs::write(&events, format!("{line}\n")).expect("write the events");
    let by_ticket = repo().join(Projection::ByTicket.file());
    let output = Process::new(&node)
        .arg(repo().join("tests/js/harness.js"))
        .arg(&by_ticket)
        .arg(&events)
        .output()
        .expect("run node");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("'emit' is not allowed"),
        "unexpected error: {stderr}"
    );
    let out = run_harness(&node, &by_ticket, &events, &["--emit"]);
    assert_eq!(
        out["links"],
        json!([{ "stream": "dobrobot-ticket-PAY-1", "eventType": "$>", "data": "0@dobrobot-ledger-prod" }])
    );
}

// ---------------------------------------------------------------------------------------------
// Installing them: on the EventStoreDB double, which keeps what it is sent (it runs nothing)

#[tokio::test(flavor = "multi_thread")]
async fn install_creates_the_projections_then_updates_them_in_place() {
    let double = Double::start().await;
    let stream = ledger::stream_name("staging");
    let policy = policy();

    let done = esdb_projections::install(&double.url(), &stream, &policy)
        .await
        .expect("installed");
    assert_eq!(done, Projection::ALL.map(|p| (p, Action::Created)).to_vec());
    assert_installed(&double, &stream, &policy);

    // Installing again, after the config gained a conflict group, updates the same three.
    let mut changed = policy.clone();
    changed.conflict_groups.push(ConflictGroup {
        name: GroupName::parse("edge").unwrap(),
        services: ["web", "cdn"]
            .iter()
            .map(|n| ServiceName::parse(n).expect("a service"))
            .collect(),
    });
    let before = double.projections();
    let done = esdb_projections::install(&double.url(), &stream, &changed)
        .await
        .expect("installed again");
    assert_eq!(done, Projection::ALL.map(|p| (p, Action::Updated)).to_vec());
    assert_installed(&double, &stream, &changed);
    let after = double.projections();
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(new.version, old.version + 1, "{} updated once", new.name);
    }
    assert!(
        after[2]
            .query
            .contains(r#"{"name":"edge","services":["cdn","web"]}"#)
    );
}

/// What the double holds is what `install` says it installs for `stream` and `policy`.
fn assert_installed(double: &Double, stream: &str, policy: &Policy) {
    let installed = double.projections();
    let names: Vec<&str> = installed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dobrobot-by-ticket",
            "dobrobot-by-service",
            "dobrobot-queue"
        ]
    );
    for (record, projection) in installed.iter().zip(Projection::ALL) {
        assert_eq!(
            record.query,
            projection.source(stream, policy),
            "{projection}"
        );
        assert!(
            record
                .query
                .contains(&format!("var LEDGER_STREAM = \"{stream}\";"))
        );
        assert_eq!(record.mode, "Continuous", "{projection}");
        assert_eq!(record.emit_enabled, projection.emits(), "{projection}");
        assert!(!record.track_emitted_streams, "{projection}");
        assert!(record.enabled, "{projection}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_installs_on_the_configured_eventstoredb() {
    let double = Double::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config_file = dir.path().join("dobrobot.toml");
    // The example config of the README, in the environment `qa`.
    let example = include_str!("../dobrobot.example.toml");
    std::fs::write(
        &config_file,
        example.replace("environment = \"prod\"", "environment = \"qa\""),
    )
    .expect("write the config");
    let policy = dobrobot::config::Config::from_file(&config_file)
        .expect("a valid config")
        .policy()
        .expect("a valid policy");

    let install = || {
        dobrobot_cli()
            .arg("--config")
            .arg(&config_file)
            .args(["--store", &double.url(), "projections", "install"])
            .output()
    };
    let first = install().await.expect("run dobrobot");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "created dobrobot-by-ticket (continuous, from dobrobot-ledger-qa, emit enabled)\n\
         created dobrobot-by-service (continuous, from dobrobot-ledger-qa, emit enabled)\n\
         created dobrobot-queue (continuous, from dobrobot-ledger-qa)\n"
    );
    assert_installed(&double, "dobrobot-ledger-qa", &policy);

    let second = install().await.expect("run dobrobot");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "updated dobrobot-by-ticket (continuous, from dobrobot-ledger-qa, emit enabled)\n\
         updated dobrobot-by-service (continuous, from dobrobot-ledger-qa, emit enabled)\n\
         updated dobrobot-queue (continuous, from dobrobot-ledger-qa)\n"
    );
    assert_eq!(double.projections().len(), 3);
}

#[tokio::test]
async fn the_cli_says_the_embedded_store_has_no_server_side_projections() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let output = dobrobot_cli()
        .args(["--store", &url, "projections", "install"])
        .output()
        .await
        .expect("run dobrobot");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("server-side projections need EventStoreDB (KurrentDB)")
            && stderr.contains(&url)
            && stderr.contains("esdb:// or kurrentdb://"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_refuses_is_an_error_that_names_the_projection() {
    let double = Double::start().await;
    double.faults().set_unavailable(true);
    let started = std::time::Instant::now();
    let error = esdb_projections::install(&double.url(), "dobrobot-ledger-prod", &policy())
        .await
        .expect_err("nothing can be installed");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("dobrobot-by-ticket"), "{error}");
    assert!(double.projections().is_empty());
}

/// The dobrobot binary, with no configuration from the environment this test runs in.
fn dobrobot_cli() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"));
    for name in dobrobot::config::ENV_OVERRIDES {
        command.env_remove(name);
    }
    command.env_remove("DOBROBOT_CONFIG");
    command
}

// ---------------------------------------------------------------------------------------------
// The generated ledger

/// A ledger recorded by the real domain on a temp SQLite file, and its dump.
struct Run {
    // Holds the SQLite file, the dump and the rendered projections.
    dir: TempDir,
    stream: String,
    policy: Policy,
    events: Vec<Recorded>,
    events_file: PathBuf,
}

impl Run {
    /// One ledger for every test of this file: generating it is the slow part.
    fn shared() -> &'static Run {
        static RUN: OnceLock<Run> = OnceLock::new();
        RUN.get_or_init(|| {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(Run::generate())
        })
    }

    async fn generate() -> Run {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = store::open(&format!(
            "sqlite://{}",
            dir.path().join("ledger.db").display()
        ))
        .await
        .expect("open the SQLite store");
        let stream = ledger::stream_name("staging");
        let policy = policy();
        let start = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .expect("a valid time")
            .with_timezone(&Utc);
        let ticks = Arc::new(AtomicI64::new(0));
        let clock = Clock::from_fn(move || {
            start + Duration::seconds(97 * ticks.fetch_add(1, Ordering::Relaxed))
        });
        let ledger = Ledger::open(
            store.clone(),
            stream.clone(),
            Arc::new(policy.clone()),
            Options {
                clock,
                ..Options::default()
            },
        )
        .await
        .expect("open the ledger");

        // The policy as a process records it when it starts; halfway, a reload that puts
        // `search` into the storage group, so the projections must follow the recorded rules.
        let adopt = |policy: Policy, cause| PolicyProposal {
            policy,
            cause,
            config_hash: None,
            host: "bot-1".to_string(),
            process: 7,
        };
        ledger
            .adopt(adopt(policy.clone(), PolicyCause::Start))
            .await
            .expect("recorded");
        let mut reloaded = policy.clone();
        for group in &mut reloaded.conflict_groups {
            if group.name.as_str() == "storage" {
                group.services.insert(s("search"));
            }
        }
        let mut generator = Generator::new(SEED);
        for i in 0..COMMANDS {
            if i == COMMANDS / 2 {
                ledger
                    .adopt(adopt(reloaded.clone(), PolicyCause::Reload))
                    .await
                    .expect("recorded");
            }
            let state = ledger.snapshot().state;
            let (who, text) = generator.next(&state, &policy);
            let command = match parse(&text) {
                Ok(Input::Command(command)) => command,
                other => panic!("`{text}` is not a command: {other:?}"),
            };
            let submission = Submission {
                command,
                actor: Actor {
                    id: UserId::parse(&who).expect("a valid user"),
                    name: who.clone(),
                    source: Source::Slack,
                },
                text,
                delivery: None,
                correlation_id: None,
            };
            ledger.submit(submission).await.expect("recorded");
            // Now and then the system reminds about the oldest open release, each kind in
            // turn; one about a stage the release is not in is refused and records nothing.
            let oldest = ledger
                .snapshot()
                .state
                .in_order()
                .first()
                .map(|r| r.ticket.clone());
            if let Some(ticket) = oldest.filter(|_| i % 9 == 4) {
                let kind = ReminderKind::ALL[(i / 9) % ReminderKind::ALL.len()];
                let submission = Submission {
                    command: Command::Remind { ticket, kind },
                    actor: Actor {
                        id: system_actor(),
                        name: "dobrobot".to_string(),
                        source: Source::System,
                    },
                    text: format!("reminder: {kind}"),
                    delivery: None,
                    correlation_id: None,
                };
                ledger.submit(submission).await.expect("recorded");
            }
        }

        let raw = store
            .read(&stream, Direction::Forwards, ReadFrom::Start, 1_000_000)
            .await
            .expect("read the ledger");
        let events_file = dir.path().join("events.jsonl");
        std::fs::write(&events_file, dump(&raw)).expect("write the events");
        let events = raw
            .iter()
            .map(|r| envelope::decode(r).expect("every stored event decodes"))
            .collect();
        Run {
            dir,
            stream,
            policy,
            events,
            events_file,
        }
    }

    /// Runs the projection as `install` would install it for this ledger and policy.
    fn harness(&self, node: &Path, projection: Projection, flags: &[&str]) -> Value {
        let file = self.dir.path().join(format!("{}.js", projection.name()));
        std::fs::write(&file, projection.source(&self.stream, &self.policy))
            .expect("write the projection");
        let mut flags = flags.to_vec();
        if projection.emits() && !flags.contains(&"--emit") {
            flags.push("--emit");
        }
        run_harness(node, &file, &self.events_file, &flags)
    }

    /// The harness's links as stream -> the ledger revisions linked there, in order.
    fn links(&self, out: &Value) -> BTreeMap<String, Vec<u64>> {
        let mut links: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for link in out["links"].as_array().expect("links") {
            assert_eq!(link["eventType"], "$>");
            let data = link["data"].as_str().expect("a link's data is text");
            let (revision, stream) = data.split_once('@').expect("N@stream");
            assert_eq!(stream, self.stream);
            links
                .entry(link["stream"].as_str().expect("a stream name").to_string())
                .or_default()
                .push(revision.parse().expect("a revision"));
        }
        links
    }

    /// The ledger is only a good test if it reaches every case of the queue's rules.
    fn assert_queue_coverage(&self) {
        let mut state = State::default();
        let mut seen = BTreeSet::new();
        let mut types = BTreeSet::new();
        for recorded in &self.events {
            types.insert(recorded.event.type_name());
            state.evolve(&recorded.event, recorded.metadata.recorded_at);
            for item in queue(&state, &self.policy) {
                seen.insert(format!("status:{:?}", item.status));
                for waiting in serde_json::to_value(&item.waiting_for)
                    .expect("serializes")
                    .as_array()
                    .expect("a list")
                {
                    let kind = waiting["kind"].as_str().expect("a kind").to_string();
                    let detail = (waiting["lock"]["kind"].as_str())
                        .or(waiting["over"]["kind"].as_str())
                        .unwrap_or_default();
                    seen.insert(format!("waiting:{kind}{detail}"));
                }
            }
        }
        for case in [
            "status:Requested",
            "status:Accepted",
            "status:Deploying",
            "waiting:approval",
            "waiting:admin",
            "waiting:freeze",
            "waiting:lockservice",
            "waiting:lockgroup",
            "waiting:turnservice",
            "waiting:turngroup",
        ] {
            assert!(
                seen.contains(case),
                "the ledger never reaches {case}: {seen:?}"
            );
        }
        assert_eq!(types.len(), Event::TYPES.len(), "event types: {types:?}");
    }
}

/// alice and bob approve (four eyes), oleg and ivan are admins; dana, emil and fay request too.
/// Two conflict groups, one with services no project deploys (`archive` is never requested).
fn policy() -> Policy {
    let mut policy = support::fixtures::policy();
    policy.approvers.insert(user("bob"));
    policy.admins.insert(user("ivan"));
    let services = policy.services_by_project.entry("WEB".to_string());
    services.or_default().extend([s("web"), s("cdn")]);
    policy
        .services_by_project
        .insert("DATA".to_string(), vec![s("warehouse"), s("billing")]);
    policy.conflict_groups.push(ConflictGroup {
        name: GroupName::parse("storage").unwrap(),
        services: [s("warehouse"), s("ledger"), s("archive")].into(),
    });
    policy
}

fn configured_services(policy: &Policy) -> BTreeSet<ServiceName> {
    policy
        .services_by_project
        .values()
        .flatten()
        .chain(policy.conflict_groups.iter().flat_map(|g| &g.services))
        .cloned()
        .collect()
}

/// Random chat commands, seeded, mostly about the releases that are open, so that most are
/// accepted and the queue gets long and busy, with enough mistakes to record refusals.
struct Generator {
    rng: u64,
    next_ticket: u32,
}

const PROJECTS: [&str; 5] = ["PAY", "API", "WEB", "DATA", "OPS"];
const EXTRA_SERVICES: [&str; 6] = ["billing", "api", "web", "search", "ledger", "warehouse"];
const REQUESTERS: [&str; 5] = ["dana", "emil", "fay", "alice", "oleg"];
const APPROVERS: [&str; 2] = ["alice", "bob"];
const ADMINS: [&str; 2] = ["oleg", "ivan"];

impl Generator {
    fn new(seed: u64) -> Self {
        Generator {
            rng: seed,
            next_ticket: 1,
        }
    }

    /// splitmix64.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.random() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.random() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Any open release, or now and then a ticket that is not open.
    fn target(&mut self, state: &State) -> (String, Option<String>) {
        let open = state.in_order();
        if open.is_empty() || self.chance(15) {
            let project = *self.pick(&PROJECTS);
            return (format!("{project}-{}", 9000 + self.below(50)), None);
        }
        let release = *self.pick(&open);
        (
            release.ticket.to_string(),
            Some(release.requester.to_string()),
        )
    }

    /// Who does it: usually someone allowed to, sometimes not.
    fn someone(&mut self, allowed: &[&str]) -> String {
        if self.chance(90) {
            self.pick(allowed).to_string()
        } else {
            self.pick(&REQUESTERS).to_string()
        }
    }

    /// The next command: mostly one that moves an open release along, as people do; now and
    /// then a blunder that the ledger refuses.
    fn next(&mut self, state: &State, policy: &Policy) -> (String, String) {
        if self.chance(10) {
            return self.blunder(state);
        }
        let frozen = !matches!(state.freeze, Freeze::Off);
        if frozen && self.chance(12) {
            return (self.pick(&APPROVERS).to_string(), "unfreeze".to_string());
        }
        let open = state.in_order();
        let with = |keep: &dyn Fn(&&Release) -> bool| -> Vec<&Release> {
            open.iter().copied().filter(|r| keep(r)).collect()
        };
        let requested = with(&|r| matches!(r.stage, Stage::Requested));
        let needs_admin = with(&|r| matches!(r.admin, AdminPresence::Needed));
        let ready = with(&|r| {
            matches!(r.stage, Stage::Accepted { .. }) && start_blockers(state, r, policy).is_empty()
        });
        let deploying = with(&|r| matches!(r.stage, Stage::Deploying { .. }));
        let waiting = with(&|r| !matches!(r.stage, Stage::Deploying { .. }));
        match self.below(100) {
            0..=21 if open.len() < 14 => self.request(state),
            22..=41 if !requested.is_empty() => {
                let release = *self.pick(&requested);
                let approver = if release.requester.as_str() == "alice" {
                    "bob"
                } else {
                    *self.pick(&APPROVERS)
                };
                (approver.to_string(), format!("accept {}", release.ticket))
            }
            42..=51 if !needs_admin.is_empty() => {
                let release = *self.pick(&needs_admin);
                (
                    self.pick(&ADMINS).to_string(),
                    format!("here {}", release.ticket),
                )
            }
            52..=71 if !ready.is_empty() => {
                let release = *self.pick(&ready);
                let who = self.doer(Some(release.requester.to_string()));
                (who, format!("dep start {}", release.ticket))
            }
            72..=87 if !deploying.is_empty() => {
                let release = *self.pick(&deploying);
                let who = self.doer(Some(release.requester.to_string()));
                if self.chance(10) {
                    self.takeover(release)
                } else if self.chance(25) {
                    (
                        who,
                        format!("dep rollback {} error rate up", release.ticket),
                    )
                } else if self.chance(20) {
                    (who, format!("dep alive {} within=5m", release.ticket))
                } else {
                    (who, format!("dep finish {}", release.ticket))
                }
            }
            88..=92 if !waiting.is_empty() => {
                let release = *self.pick(&waiting);
                if self.chance(50) {
                    (
                        release.requester.to_string(),
                        format!("cancel {}", release.ticket),
                    )
                } else {
                    let approver = self.pick(&APPROVERS).to_string();
                    (approver, format!("reject {} not this week", release.ticket))
                }
            }
            93..=95 if !frozen => {
                let who = self.pick(&APPROVERS).to_string();
                if self.chance(50) {
                    (who, "freeze quarter end".to_string())
                } else {
                    let first = *self.pick(&EXTRA_SERVICES);
                    let second = *self.pick(&EXTRA_SERVICES);
                    (who, format!("freeze incident services={first},{second}"))
                }
            }
            96..=99 if !waiting.is_empty() => {
                // Too early: refused for what it waits for.
                let release = *self.pick(&waiting);
                let who = self.doer(Some(release.requester.to_string()));
                (who, format!("dep start {}", release.ticket))
            }
            _ if open.len() < 14 => self.request(state),
            // A long queue and nothing to move: someone gives up.
            _ => {
                let release = *self.pick(&waiting);
                (
                    release.requester.to_string(),
                    format!("cancel {}", release.ticket),
                )
            }
        }
    }

    /// A takeover of a deployment: by an admin alone (refused while it is young), or forced:
    /// proposed by an approver, confirmed by an admin.
    fn takeover(&mut self, release: &Release) -> (String, String) {
        let ticket = &release.ticket;
        let pending = match &release.stage {
            Stage::Deploying { takeover, .. } => takeover.is_some(),
            _ => false,
        };
        if pending {
            let admin = self.pick(&ADMINS).to_string();
            (admin, format!("dep takeover {ticket} --force"))
        } else if self.chance(50) {
            let admin = self.pick(&ADMINS).to_string();
            (admin, format!("dep takeover {ticket} runner gone"))
        } else {
            let approver = self.pick(&APPROVERS).to_string();
            (
                approver,
                format!("dep takeover {ticket} --force runner gone"),
            )
        }
    }

    /// Anything at all, about any ticket: mostly refused.
    fn blunder(&mut self, state: &State) -> (String, String) {
        let (ticket, requester) = self.target(state);
        let who = self.someone(&APPROVERS);
        match self.below(9) {
            0 => (who, format!("accept {ticket}")),
            1 => (self.someone(&ADMINS), format!("here {ticket}")),
            2 => (self.doer(requester), format!("dep start {ticket}")),
            3 => (self.doer(requester), format!("dep finish {ticket}")),
            4 => (self.doer(requester), format!("dep rollback {ticket} oops")),
            5 => (who, format!("reject {ticket} no")),
            6 => (self.someone(&["dana"]), format!("cancel {ticket}")),
            7 => (who, "freeze again".to_string()),
            _ => (who, "unfreeze".to_string()),
        }
    }

    /// The requester or an admin, usually.
    fn doer(&mut self, requester: Option<String>) -> String {
        match requester {
            Some(requester) if self.chance(70) => requester,
            _ => self.someone(&ADMINS),
        }
    }

    fn request(&mut self, state: &State) -> (String, String) {
        let who = self.pick(&REQUESTERS).to_string();
        let ticket = if self.chance(4) && !state.releases.is_empty() {
            // Already open: refused.
            let open = state.in_order();
            self.pick(&open).ticket.to_string()
        } else if self.chance(3) {
            "OPS_X-1".to_string() // fails the ticket pattern
        } else {
            let project = *self.pick(&PROJECTS);
            self.next_ticket += 1;
            format!("{project}-{}", self.next_ticket)
        };
        let wiki = if self.chance(94) {
            " https://wiki.example/release-notes"
        } else {
            ""
        };
        let admin = if self.chance(45) {
            " no_need_admin"
        } else {
            ""
        };
        let services = if ticket.starts_with("OPS") || self.chance(12) {
            let first = *self.pick(&EXTRA_SERVICES);
            let second = *self.pick(&EXTRA_SERVICES);
            if self.chance(85) {
                format!(" services={first},{second}")
            } else {
                String::new() // OPS deploys nothing by config: refused
            }
        } else {
            String::new()
        };
        (
            who,
            format!("dobro #{ticket}{wiki} release {ticket}{admin}{services}"),
        )
    }
}

/// `events` as stored in `stream` from revision 0, chained and with metadata, as the ledger
/// would store them, but without `decide`.
fn sealed(stream: &str, events: &[Event]) -> Vec<RecordedEvent> {
    let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("a valid time")
        .with_timezone(&Utc);
    let context = envelope::Context {
        actor: Actor {
            id: user("dana"),
            name: "dana".to_string(),
            source: Source::System,
        },
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
        command: String::new(),
        recorded_at: at,
    };
    let mut prev = envelope::GENESIS_HASH.to_string();
    let mut raw = Vec::new();
    for (revision, event) in (0u64..).zip(events) {
        let id = uuid::Uuid::from_u128(u128::from(revision) + 1);
        let (new, hash) = envelope::seal(event, id, &context, &prev);
        prev = hash;
        raw.push(RecordedEvent {
            stream: stream.to_string(),
            revision,
            id,
            event_type: new.event_type,
            data: new.data,
            metadata: new.metadata,
            created: at,
        });
    }
    raw
}

/// Asserts that the harness's queue state (run with --every) equals `domain::queue` after every
/// event the projection handles, and at the end. Returns how many states were compared.
fn assert_same_queue(out: &Value, policy: &Policy, events: &[Recorded]) -> usize {
    let mut state = State::default();
    let mut compared = 0;
    let mut states = out["states"]
        .as_array()
        .expect("--every gives the states")
        .iter();
    for recorded in events {
        state.evolve(&recorded.event, recorded.metadata.recorded_at);
        if matches!(
            recorded.event,
            Event::CommandRefused { .. }
                | Event::ReminderSent { .. }
                | Event::DeploymentAlive { .. }
                | Event::TakeoverProposed { .. }
        ) {
            // No handler: the projection never sees it, and it changes no queue.
            continue;
        }
        let js = states
            .next()
            .unwrap_or_else(|| panic!("no JS state after revision {}", recorded.revision));
        assert_eq!(js["revision"], json!(recorded.revision));
        let rust = serde_json::to_value(queue(&state, policy)).expect("the queue serializes");
        assert_eq!(
            js["state"]["queue"],
            rust,
            "the queue differs after revision {} ({})",
            recorded.revision,
            recorded.event.type_name()
        );
        assert_eq!(js["result"], rust, "the result is the queue");
        compared += 1;
    }
    assert!(
        states.next().is_none(),
        "the JS handled events Rust did not"
    );
    let rust = serde_json::to_value(queue(&state, policy)).expect("the queue serializes");
    assert_eq!(out["state"]["queue"], rust, "the final queue differs");
    assert_eq!(out["result"], rust, "the final result differs");
    compared
}

/// The stored events as the harness reads them: one JSON object a line.
fn dump(raw: &[RecordedEvent]) -> String {
    let mut text = String::new();
    for event in raw {
        let line = json!({
            "stream": event.stream,
            "revision": event.revision,
            "id": event.id,
            "type": event.event_type,
            "data": serde_json::from_slice::<Value>(&event.data).expect("data is JSON"),
            "metadata": serde_json::from_slice::<Value>(&event.metadata).expect("metadata is JSON"),
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Node

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `node` from PATH; `None` (the test is skipped) when there is none, unless in CI.
fn node() -> Option<PathBuf> {
    let found = Process::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("node"));
    }
    if std::env::var_os("CI").is_some() {
        panic!("node not found, and CI is set: install Node (Debian's `nodejs`) to run this test");
    }
    eprintln!("skipped: node not found");
    None
}

fn run_harness(node: &Path, projection: &Path, events: &Path, flags: &[&str]) -> Value {
    let output = Process::new(node)
        .arg(repo().join("tests/js/harness.js"))
        .arg(projection)
        .arg(events)
        .args(flags)
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "the harness failed on {}: {}",
        projection.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the harness prints JSON")
}
