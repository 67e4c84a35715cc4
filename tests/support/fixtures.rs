//! The fixtures the tests share: typed values from test literals, the release policy most tests
//! decide by, a submission as the CLI makes it, a clock the test moves, and waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use dobrobot::domain::ReminderKind;
use dobrobot::domain::{
    ConflictGroup, GroupName, Input, Policy, RoleEntry, ServiceName, TicketKey, UserId, parse,
};
use dobrobot::envelope::{Actor, Source};
use dobrobot::ledger::{Clock, Submission};
use proptest::prelude::*;

pub fn u(id: &str) -> UserId {
    UserId::parse(id).expect("a test user")
}

pub fn t(key: &str) -> TicketKey {
    TicketKey::parse(key).expect("a test ticket")
}

/// A role entry of the config: a user, or a Slack user group (`S…`).
pub fn role(entry: &str) -> RoleEntry {
    RoleEntry::parse(entry).expect("a test role entry")
}

pub fn s(name: &str) -> ServiceName {
    ServiceName::parse(name).expect("a test service")
}

/// alice approves, oleg is the admin; PAY deploys billing, API deploys api, and the two
/// services form the conflict group backend-core. Tests that need more add to it.
pub fn policy() -> Policy {
    Policy {
        approvers: [u("alice")].into(),
        admins: [u("oleg")].into(),
        services_by_project: [
            ("PAY".to_string(), vec![s("billing")]),
            ("API".to_string(), vec![s("api")]),
        ]
        .into(),
        conflict_groups: vec![ConflictGroup {
            name: GroupName::parse("backend-core").expect("a group name"),
            services: [s("api"), s("billing")].into(),
        }],
        ..Policy::default()
    }
}

pub fn actor(who: &str, source: Source) -> Actor {
    Actor {
        id: u(who),
        name: who.to_string(),
        source,
    }
}

/// `text` typed by `who` on the CLI.
pub fn submission(who: &str, text: &str) -> Submission {
    let command = match parse(text) {
        Ok(Input::Command(command)) => command,
        other => panic!("`{text}` is not a command: {other:?}"),
    };
    Submission {
        command,
        actor: actor(who, Source::Cli),
        text: text.to_string(),
        delivery: None,
        correlation_id: None,
    }
}

/// The seed's release, one step each: request, accept, an admin joins, start, finish (with
/// the roles of `policy()`).
pub const SEED_FLOW: [(&str, &str); 5] = [
    ("bob", "dobro #PAY-1 https://wiki/x notes"),
    ("alice", "accept PAY-1"),
    ("oleg", "here PAY-1"),
    ("bob", "dep start PAY-1"),
    ("bob", "dep finish PAY-1"),
];

/// Monday 2026-03-02 09:00 UTC.
pub fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A clock the test sets; ledgers and schedulers share it.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        TestClock(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }

    pub fn clock(&self) -> Clock {
        let now = self.0.clone();
        Clock::from_fn(move || *now.lock().unwrap())
    }
}

/// How long a test waits for something that happens in the background.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits until `check` holds; panics after `WAIT`.
pub async fn wait_until<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A command from a small pool, for random histories: most are refused at random points, which
/// is the point.
pub fn random_command() -> impl proptest::strategy::Strategy<Value = (&'static str, String)> {
    use proptest::prelude::*;
    let ticket = prop_oneof![Just("PAY-1"), Just("PAY-2"), Just("API-3")];
    (0..9usize, ticket).prop_map(|(verb, ticket)| match verb {
        0 => ("bob", format!("dobro #{ticket} https://wiki/x notes")),
        1 => ("alice", format!("accept {ticket}")),
        2 => ("oleg", format!("here {ticket}")),
        3 => ("bob", format!("dep start {ticket}")),
        4 => ("bob", format!("dep finish {ticket}")),
        5 => ("alice", "freeze incident".to_string()),
        6 => ("alice", "unfreeze".to_string()),
        7 => ("bob", format!("dep rollback {ticket} errors")),
        _ => ("alice", format!("reject {ticket} not now")),
    })
}

/// Records `commands` one by one, a minute apart on `clock`, accepted or refused.
pub async fn record(
    ledger: &dobrobot::ledger::Ledger,
    clock: &TestClock,
    commands: &[(&str, String)],
) {
    for (who, text) in commands {
        let now = clock.clock().now();
        clock.set(now + chrono::Duration::minutes(1));
        ledger
            .submit(submission(who, text))
            .await
            .expect("recorded (accepted or refused)");
    }
}

/// Runs `check` on `cases` random values of `strategy`, each with a store of its own: odd cases
/// on a SQLite file in a fresh directory (which `check` may use too), even ones on the
/// EventStoreDB gRPC double. `check` is given the case's number, to name a stream of its own.
pub fn on_both_stores<S: proptest::strategy::Strategy>(
    cases: u32,
    strategy: S,
    check: impl AsyncFn(u64, Arc<dyn dobrobot::store::EventStore>, &std::path::Path, S::Value),
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let double = runtime.block_on(esdb_double::Double::start());
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        ..proptest::test_runner::Config::default()
    });
    let counter = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&strategy, |value| {
            let case = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let url = if case % 2 == 1 {
                    format!("sqlite://{}", dir.path().join("ledger.db").display())
                } else {
                    double.url()
                };
                let store = dobrobot::store::open(&url).await.unwrap();
                check(case, store, dir.path(), value).await;
            });
            Ok(())
        })
        .unwrap();
}

pub const ACTORS: &[&str] = &["dev", "eve", "alice", "bob", "oleg"];
pub const TICKETS: &[&str] = &["PAY-1", "PAY-2", "API-1", "WEB-1", "OPS-1", "X_Y-1"];

/// A random chat command by one of the usual actors, mostly about a handful of tickets, with the
/// system's reminders written as `remind <kind> <ticket>`: for proptests of the rules.
pub fn chat() -> impl Strategy<Value = (&'static str, String)> {
    let ticket = prop::sample::select(TICKETS);
    let kind = prop::sample::select(ReminderKind::ALL.to_vec());
    let text =
        (0..13usize, ticket, any::<bool>(), kind).prop_map(
            |(verb, ticket, flag, kind)| match verb {
                0 => {
                    let extra = if flag { " no_need_admin" } else { "" };
                    format!("dobro {ticket} https://wiki/x notes{extra}")
                }
                1 => format!("dobro {ticket} services=web,billing"),
                2 => format!("accept {ticket}"),
                3 => format!("reject {ticket} not now"),
                4 => format!("cancel {ticket}"),
                5 => format!("here {ticket}"),
                6 | 7 => format!("dep start {ticket}"),
                8 => format!("dep finish {ticket}"),
                9 => format!("dep rollback {ticket} broken"),
                10 if flag => "freeze audit services=billing".to_string(),
                10 => "freeze audit".to_string(),
                11 => "unfreeze".to_string(),
                _ => format!("remind {kind} {ticket}"),
            },
        );
    (prop::sample::select(ACTORS), text)
}

/// A system command written in a test script: `policy` (the policy a process records when it
/// starts, as `policy` gives it) or `remind <kind> <ticket>` (no chat text parses to either).
pub fn system_command(
    text: &str,
    policy: &dobrobot::domain::Policy,
) -> Option<(UserId, dobrobot::domain::Command)> {
    use dobrobot::domain::reminders::system_actor;
    use dobrobot::domain::{Command, PolicyCause, PolicyProposal};
    if text == "policy" {
        let proposal = PolicyProposal {
            policy: policy.clone(),
            cause: PolicyCause::Start,
            config_hash: Some("0f".repeat(32)),
            host: "bot-1".to_string(),
            process: 42,
        };
        return Some((system_actor(), Command::AdoptPolicy(Box::new(proposal))));
    }
    let [verb, kind, ticket] = text.split(' ').collect::<Vec<_>>()[..] else {
        return None;
    };
    let kind = ReminderKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    (verb == "remind").then(|| {
        (
            system_actor(),
            Command::Remind {
                ticket: t(ticket),
                kind,
            },
        )
    })
}
