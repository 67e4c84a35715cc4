//! The persisted read models (`dobrobot::models`): after a random command history, on SQLite
//! and on the EventStoreDB double, every question they answer (history, deployments, who,
//! suspects, as of now and as of a past point, page by page) equals the same question of a
//! fresh fold, and `verify` finds them equal; a later catch-up applies only the new events; a
//! tampered model is named by `verify`; a tampered checkpoint makes them rebuild, and so does one
//! moved back to an earlier event.

mod support;

use std::sync::Arc;

use chrono::Duration;
use dobrobot::domain::{HistoryFilter, ServiceName, TicketKey, UserId};
use dobrobot::ledger::{self, Ledger, Options};
use dobrobot::models::StoredModels;
use dobrobot::projections::{self, AsOf, Deployment, Deployments, History};
use dobrobot::read::{DeploymentFilter, Stored};
use dobrobot::store::{self, EventStore};
use dobrobot::verify::{self, ModelsVerifyError};

use support::fixtures::{
    SEED_FLOW, TestClock, monday, on_both_stores, policy, random_command, record, s, t, u,
};

const ALL: usize = usize::MAX;

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    store::open(&format!(
        "sqlite://{}",
        dir.path().join("ledger.db").display()
    ))
    .await
    .unwrap()
}

async fn open_ledger(store: &Arc<dyn EventStore>, stream: &str, clock: &TestClock) -> Ledger {
    Ledger::open(
        store.clone(),
        stream.to_string(),
        Arc::new(policy()),
        Options {
            clock: clock.clock(),
            ..Options::default()
        },
    )
    .await
    .unwrap()
}

async fn folded<P: projections::Projection + Default>(
    store: &Arc<dyn EventStore>,
    stream: &str,
    as_of: AsOf,
) -> P {
    let mut p = P::default();
    projections::build(store, stream, as_of, &mut p)
        .await
        .unwrap();
    p
}

/// Every question the models answer equals the same question of a fresh fold.
async fn assert_same_answers(store: &Arc<dyn EventStore>, stream: &str, models: &StoredModels) {
    let history: History = folded(store, stream, AsOf::Latest).await;
    let deployments: Deployments = folded(store, stream, AsOf::Latest).await;
    let tickets: Vec<TicketKey> = ["PAY-1", "PAY-2", "API-3"].map(t).to_vec();
    let services: Vec<ServiceName> = ["billing", "api"].map(s).to_vec();
    let actors: Vec<UserId> = ["alice", "bob", "oleg"].map(u).to_vec();

    let mut filters = vec![HistoryFilter::default()];
    filters.extend(tickets.iter().map(|t| HistoryFilter {
        ticket: Some(t.clone()),
        ..HistoryFilter::default()
    }));
    filters.extend(services.iter().map(|s| HistoryFilter {
        service: Some(s.clone()),
        ..HistoryFilter::default()
    }));
    filters.extend(actors.iter().map(|a| HistoryFilter {
        actor: Some(a.clone()),
        event_type: Some("CommandRefused".into()),
        ..HistoryFilter::default()
    }));
    // With times, some between two whole milliseconds: read from the first entry then on.
    for minutes in [0, 3, 7, 20] {
        let at = monday() + Duration::minutes(minutes) + Duration::microseconds(500);
        filters.push(HistoryFilter {
            since: Some(at),
            ..HistoryFilter::default()
        });
        filters.push(HistoryFilter {
            until: Some(at),
            ..HistoryFilter::default()
        });
        filters.push(HistoryFilter {
            service: services.first().cloned(),
            since: Some(at - Duration::minutes(2)),
            until: Some(at),
            ..HistoryFilter::default()
        });
        filters.push(HistoryFilter {
            since: Some(monday() + Duration::minutes(minutes)),
            ..HistoryFilter::default()
        });
    }
    for filter in &filters {
        let expected: Vec<_> = history.matching(filter).cloned().collect();
        let all = models.read(|r| r.history(filter, None, None, ALL)).unwrap();
        assert_eq!(all.items, expected, "history {filter:?}");
        // Page by page, three at a time, from the cursors.
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = models.read(|r| r.history(filter, cursor, None, 3)).unwrap();
            paged.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, expected, "history {filter:?} in pages");
        let (total, shown) = models.read(|r| r.history_tail(filter, 4)).unwrap();
        assert_eq!(total, expected.len());
        assert_eq!(shown, expected[expected.len().saturating_sub(4)..]);
    }

    let mut deployment_filters = vec![DeploymentFilter::default()];
    deployment_filters.extend(services.iter().map(|s| DeploymentFilter {
        service: Some(s.clone()),
        ..DeploymentFilter::default()
    }));
    deployment_filters.extend(tickets.iter().map(|t| DeploymentFilter {
        ticket: Some(t.clone()),
        ..DeploymentFilter::default()
    }));
    deployment_filters.extend(actors.iter().map(|a| DeploymentFilter {
        actor: Some(a.clone()),
        ..DeploymentFilter::default()
    }));
    // With a time, read from the index of the latest activity.
    for minutes in [0, 5, 12, 25] {
        let since = Some(monday() + Duration::minutes(minutes));
        deployment_filters.push(DeploymentFilter {
            since,
            ..DeploymentFilter::default()
        });
        deployment_filters.push(DeploymentFilter {
            since,
            service: Some(s("billing")),
            ..DeploymentFilter::default()
        });
        deployment_filters.push(DeploymentFilter {
            since,
            actor: Some(u("bob")),
            ..DeploymentFilter::default()
        });
    }
    for filter in &deployment_filters {
        let expected: Vec<_> = deployments
            .all
            .iter()
            .filter(|d| filter.matches(d))
            .cloned()
            .collect();
        let page = models
            .read(|r| r.deployments(filter, None, None, ALL))
            .unwrap();
        assert_eq!(values(page.items), expected, "deployments {filter:?}");
    }
    for service in &services {
        let expected: Vec<_> = deployments
            .who(service, None)
            .into_iter()
            .cloned()
            .collect();
        let page = models
            .read(|r| r.who(service, &DeploymentFilter::default(), None, None, ALL))
            .unwrap();
        assert_eq!(values(page.items), expected, "who {service}");
        for minutes in [0, 7, 20] {
            let since = monday() + Duration::minutes(minutes);
            let expected: Vec<_> = deployments
                .who(service, Some(since))
                .into_iter()
                .cloned()
                .collect();
            let filter = DeploymentFilter {
                since: Some(since),
                ..DeploymentFilter::default()
            };
            let page = models
                .read(|r| r.who(service, &filter, None, None, ALL))
                .unwrap();
            assert_eq!(values(page.items), expected, "who {service} since {since}");
        }
    }

    // As of past points: every revision, and the time of every event.
    let last = store.last_revision(stream).await.unwrap().unwrap_or(0);
    for revision in 0..=last {
        let then: Deployments = folded(store, stream, AsOf::Revision(revision)).await;
        let page = models
            .read(|r| r.deployments(&DeploymentFilter::default(), None, Some(revision), ALL))
            .unwrap();
        assert_eq!(
            values(page.items),
            then.all,
            "deployments as of revision {revision}"
        );
        for service in &services {
            let expected: Vec<_> = then.who(service, None).into_iter().cloned().collect();
            let page = models
                .read(|r| {
                    r.who(
                        service,
                        &DeploymentFilter::default(),
                        None,
                        Some(revision),
                        ALL,
                    )
                })
                .unwrap();
            assert_eq!(
                values(page.items),
                expected,
                "who {service} as of {revision}"
            );
        }
    }
    for minutes in 0..=(last as i64 + 2) {
        let at = monday() + Duration::minutes(minutes);
        let then: Deployments = folded(store, stream, AsOf::Time(at)).await;
        for window in [Duration::minutes(3), Duration::hours(2)] {
            for wanted in [vec![], vec![s("billing")]] {
                let expected: Vec<_> = projections::suspects(&then, at, window, &wanted)
                    .into_iter()
                    .cloned()
                    .collect();
                let page = models
                    .read(|r| r.suspects(at, window, &wanted, None, ALL))
                    .unwrap();
                assert_eq!(
                    page.items, expected,
                    "suspects at {at}, {window}, {wanted:?}"
                );
            }
        }
    }
}

#[test]
fn after_a_random_history_the_persisted_models_answer_as_a_fresh_fold() {
    on_both_stores(
        10,
        (
            proptest::collection::vec(random_command(), 1..30),
            proptest::collection::vec(random_command(), 0..15),
        ),
        async |case, store, dir, (first, later)| {
            let stream = ledger::stream_name(&format!("models-{case}"));
            let clock = TestClock::new(monday());
            let ledger = open_ledger(&store, &stream, &clock).await;
            record(&ledger, &clock, &first).await;
            let models = StoredModels::open(dir.join("ledger.models")).unwrap();
            let caught = models.catch_up(&store, &stream).await.unwrap();
            assert_eq!(caught.applied, first.len() as u64);
            assert_same_answers(&store, &stream, &models).await;

            // Later: only what was recorded since is applied.
            record(&ledger, &clock, &later).await;
            let again = models.catch_up(&store, &stream).await.unwrap();
            assert_eq!(again.applied, later.len() as u64);
            assert!(!again.rebuilt);
            assert_same_answers(&store, &stream, &models).await;
            let report = verify::verify_models(&store, &stream, &models)
                .await
                .unwrap();
            assert_eq!(
                report.revision,
                Some((first.len() + later.len()) as u64 - 1)
            );
        },
    );
}

/// A ledger with the seed's release and a second request, and its models caught up.
async fn seeded(dir: &tempfile::TempDir) -> (Arc<dyn EventStore>, String, Arc<StoredModels>) {
    let store = sqlite(dir).await;
    let stream = ledger::stream_name("test");
    let clock = TestClock::new(monday());
    let ledger = open_ledger(&store, &stream, &clock).await;
    let mut commands: Vec<(&str, String)> = SEED_FLOW
        .iter()
        .map(|(who, text)| (*who, text.to_string()))
        .collect();
    commands.push(("bob", "dobro #PAY-2 https://wiki/x notes".into()));
    record(&ledger, &clock, &commands).await;
    let models = StoredModels::open(dir.path().join("ledger.db.models")).unwrap();
    models.catch_up(&store, &stream).await.unwrap();
    (store, stream, models)
}

fn tamper(dir: &tempfile::TempDir, sql: &str) {
    let conn = rusqlite::Connection::open(dir.path().join("ledger.db.models")).unwrap();
    let changed = conn.execute(sql, []).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

#[tokio::test]
async fn verify_names_the_persisted_model_that_differs_from_the_fold() {
    for (sql, model) in [
        (
            "UPDATE history SET entry = json_set(entry, '$.command', 'dep finish PAY-9') \
             WHERE revision = 2",
            "history",
        ),
        (
            "UPDATE deployments SET record = json_set(record, '$.approver', 'mallory') \
             WHERE revision = 0",
            "deployments",
        ),
        (
            "UPDATE meta SET value = replace(value, 'PAY-2', 'PAY-7') WHERE key = 'state'",
            "live state",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (store, stream, models) = seeded(&dir).await;
        verify::verify_models(&store, &stream, &models)
            .await
            .expect("equal before the tampering");
        tamper(&dir, sql);
        match verify::verify_models(&store, &stream, &models).await {
            Err(error @ ModelsVerifyError::Differs { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains(&format!("persisted {model} differ")),
                    "{message}"
                );
            }
            other => panic!("verify should name the {model}: {other:?}"),
        }
    }
}

#[test]
fn the_cli_verify_names_a_tampered_model_and_a_rebuild_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
            .env_remove("DOBROBOT_CONFIG")
            .env_remove("DOBROBOT_MODELS")
            .args(["--store", &store])
            .args(args)
            .output()
            .unwrap()
    };
    for text in [
        "dobro #PAY-1 https://wiki/x notes services=billing",
        "dobro #PAY-2 https://wiki/x notes services=billing",
    ] {
        assert!(run(&["chat", "--as", "bob", text]).status.success());
    }
    let listed = run(&["history", "--format", "json"]);
    assert!(listed.status.success());
    let verified = run(&["verify"]);
    let out = String::from_utf8_lossy(&verified.stdout).to_string();
    assert!(verified.status.success(), "{out}");
    assert!(
        out.contains("read models in") && out.contains("equal a fresh fold"),
        "{out}"
    );

    tamper(
        &dir,
        "UPDATE history SET entry = json_set(entry, '$.actor', 'mallory') WHERE revision = 2",
    );
    let verified = run(&["verify"]);
    let out = String::from_utf8_lossy(&verified.stdout).to_string();
    assert_eq!(verified.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAILED: the persisted history differ"),
        "{out}"
    );
    assert!(out.contains("revision 2"), "{out}");

    let rebuilt = run(&["projections", "rebuild"]);
    let out = String::from_utf8_lossy(&rebuilt.stdout).to_string();
    assert!(rebuilt.status.success(), "{out}");
    // The policy recorded by the first `chat`, then the two requests.
    assert!(out.contains("from 3 events"), "{out}");
    assert!(run(&["verify"]).status.success());
}

#[tokio::test]
async fn a_checkpoint_the_ledger_does_not_vouch_for_makes_the_models_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let (store, stream, models) = seeded(&dir).await;
    tamper(&dir, "UPDATE meta SET value = 'forged' WHERE key = 'hash'");
    assert!(matches!(
        verify::verify_models(&store, &stream, &models).await,
        Err(ModelsVerifyError::Checkpoint { revision: 5 })
    ));
    let caught = models.catch_up(&store, &stream).await.unwrap();
    assert!(caught.rebuilt);
    assert_eq!(caught.applied, 6);
    verify::verify_models(&store, &stream, &models)
        .await
        .unwrap();
    assert_same_answers(&store, &stream, &models).await;
}

#[tokio::test]
async fn a_checkpoint_moved_back_to_an_earlier_event_makes_the_models_rebuild_too() {
    let dir = tempfile::tempdir().unwrap();
    let (store, stream, models) = seeded(&dir).await;
    let raw = store
        .read(
            &stream,
            store::Direction::Forwards,
            store::ReadFrom::Revision(1),
            1,
        )
        .await
        .unwrap();
    let hash = dobrobot::envelope::decode(&raw[0]).unwrap().metadata.hash;
    tamper(&dir, "UPDATE meta SET value = '1' WHERE key = 'revision'");
    tamper(
        &dir,
        &format!("UPDATE meta SET value = '{hash}' WHERE key = 'hash'"),
    );
    // The ledger vouches for the checkpoint, but the live state stored is of a later one.
    let caught = models.catch_up(&store, &stream).await.unwrap();
    assert!(caught.rebuilt);
    assert_eq!(caught.applied, 6);
    verify::verify_models(&store, &stream, &models)
        .await
        .unwrap();
    assert_same_answers(&store, &stream, &models).await;
}

/// The records of a page, each checked to be written out as its own serde form (the JSON the
/// models store it as, or its fold as of a past point).
fn values(items: Vec<Stored<Deployment>>) -> Vec<Deployment> {
    items
        .into_iter()
        .map(|stored| {
            let value = stored.value().unwrap();
            assert_eq!(
                serde_json::to_value(&stored).unwrap(),
                serde_json::to_value(value).unwrap(),
                "{} is written out as stored",
                value.ticket
            );
            stored.into_inner().unwrap()
        })
        .collect()
}
