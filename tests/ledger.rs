//! The ledger end to end on a real SQLite file: the seed flow, refusals on the record,
//! redelivered commands, batching, two writers racing on one file, and `verify` catching an
//! edited or removed event.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

mod support;

use dobrobot::domain::{Event, GroupName, LockKey, Refusal, Role, TicketKey, WikiLink};
use dobrobot::envelope::{self, Context, Recorded, Source};
use dobrobot::ledger::{self, Decision, Ledger, Options, Outcome, Submission};
use dobrobot::store::{self, Direction, EventStore, ReadFrom};
use dobrobot::verify::{self, Problem, VerifyError};
use rusqlite::params;
use support::fixtures::{SEED_FLOW, policy, s as service, submission, u as user};
use tempfile::TempDir;

/// A fresh SQLite file in a temp dir, and the ledger stream on it.
struct Fixture {
    // Held so the directory outlives the stores.
    _dir: TempDir,
    path: PathBuf,
    stream: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("ledger.db");
        Fixture {
            _dir: dir,
            path,
            stream: ledger::stream_name("test"),
        }
    }

    /// A new `SqliteStore` instance on the file, with its own connections.
    async fn store(&self) -> Arc<dyn EventStore> {
        store::open(&format!("sqlite://{}", self.path.display()))
            .await
            .expect("open the SQLite store")
    }

    async fn ledger(&self, store: &Arc<dyn EventStore>) -> Ledger {
        self.ledger_with(store, Options::default()).await
    }

    async fn ledger_with(&self, store: &Arc<dyn EventStore>, options: Options) -> Ledger {
        Ledger::open(
            store.clone(),
            self.stream.clone(),
            Arc::new(policy()),
            options,
        )
        .await
        .expect("open the ledger")
    }

    /// Every event of the stream, decoded, in revision order.
    async fn events(&self, store: &Arc<dyn EventStore>) -> Vec<Recorded> {
        store
            .read(
                &self.stream,
                Direction::Forwards,
                ReadFrom::Start,
                1_000_000,
            )
            .await
            .expect("read the stream")
            .iter()
            .map(|r| envelope::decode(r).expect("every stored event decodes"))
            .collect()
    }

    fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("open the file with rusqlite")
    }
}

fn ticket(key: &str) -> TicketKey {
    TicketKey::parse(key).expect("a valid ticket key")
}

fn delivered(who: &str, text: &str, delivery: &str) -> Submission {
    Submission {
        delivery: Some(delivery.to_string()),
        ..submission(who, text)
    }
}

async fn submit(ledger: &Ledger, who: &str, text: &str) -> Outcome {
    ledger
        .submit(submission(who, text))
        .await
        .unwrap_or_else(|e| panic!("`{text}` by {who} was not recorded: {e}"))
}

fn events_of(recorded: &[Recorded]) -> Vec<Event> {
    recorded.iter().map(|r| r.event.clone()).collect()
}

async fn assert_verifies(fixture: &Fixture, store: &Arc<dyn EventStore>, events: u64) {
    let report = verify::verify(store, &fixture.stream)
        .await
        .unwrap_or_else(|e| panic!("verify failed: {e}"));
    assert_eq!(report.events, events);
}

fn requested(key: &str, requester: &str, need_admin: bool) -> Event {
    Event::ReleaseRequested {
        ticket: ticket(key),
        requester: user(requester),
        services: vec![service("billing")],
        wiki: Some(WikiLink::parse("https://wiki/x").expect("a valid link")),
        comment: "notes".to_string(),
        need_admin,
        tracker: None,
    }
}

fn seed_flow_events() -> Vec<Event> {
    vec![
        requested("PAY-1", "bob", true),
        Event::ReleaseApproved {
            ticket: ticket("PAY-1"),
            approver: user("alice"),
        },
        Event::AdminJoined {
            ticket: ticket("PAY-1"),
            admin: user("oleg"),
        },
        Event::DeploymentStarted {
            ticket: ticket("PAY-1"),
            by: user("bob"),
            services: vec![service("billing")],
            conflict_groups: vec![GroupName::parse("backend-core").unwrap()],
        },
        Event::DeploymentFinished {
            ticket: ticket("PAY-1"),
            by: user("bob"),
        },
    ]
}

async fn record_seed_flow(fixture: &Fixture, store: &Arc<dyn EventStore>) {
    let ledger = fixture.ledger(store).await;
    for (who, text) in SEED_FLOW {
        submit(&ledger, who, text).await;
    }
}

#[tokio::test]
async fn the_seed_flow_is_accepted_and_recorded_in_order() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let ledger = fixture.ledger(&store).await;

    let expected = seed_flow_events();
    for (revision, ((who, text), event)) in SEED_FLOW.iter().zip(&expected).enumerate() {
        let outcome = submit(&ledger, who, text).await;
        assert_eq!(
            outcome.result,
            Decision::Accepted(vec![event.clone()]),
            "{text}"
        );
        assert_eq!(outcome.revision, revision as u64, "{text}");
    }

    let recorded = fixture.events(&store).await;
    assert_eq!(events_of(&recorded), expected);
    let revisions: Vec<u64> = recorded.iter().map(|r| r.revision).collect();
    assert_eq!(revisions, vec![0, 1, 2, 3, 4]);
    for (r, (who, text)) in recorded.iter().zip(SEED_FLOW) {
        assert_eq!(r.metadata.actor.id, user(who));
        assert_eq!(r.metadata.actor.source, Source::Cli);
        assert_eq!(r.metadata.command, text);
    }
    assert!(ledger.snapshot().state.releases.is_empty());
    assert!(ledger.snapshot().state.locks.is_empty());
    assert_eq!(ledger.snapshot().revision, Some(4));
    assert_verifies(&fixture, &store, 5).await;
}

#[tokio::test]
async fn a_refused_command_is_recorded_with_who_what_and_why() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let ledger = fixture.ledger(&store).await;
    submit(&ledger, "bob", "dobro #PAY-1 https://wiki/x notes").await;

    let by_requester = submit(&ledger, "bob", "accept PAY-1").await;
    let too_early = submit(&ledger, "bob", "dep start PAY-1").await;

    let not_approver = Refusal::NotAllowed {
        role: Role::Approver,
    };
    let not_accepted = Refusal::NotAccepted {
        ticket: ticket("PAY-1"),
    };
    assert_eq!(by_requester.result, Decision::Refused(not_approver.clone()));
    assert_eq!(by_requester.revision, 1);
    assert_eq!(too_early.result, Decision::Refused(not_accepted.clone()));
    assert_eq!(too_early.revision, 2);

    let recorded = fixture.events(&store).await;
    assert_eq!(
        events_of(&recorded[1..]),
        vec![
            Event::CommandRefused {
                by: user("bob"),
                command: "accept".to_string(),
                ticket: Some(ticket("PAY-1")),
                refusal: not_approver,
            },
            Event::CommandRefused {
                by: user("bob"),
                command: "dep start".to_string(),
                ticket: Some(ticket("PAY-1")),
                refusal: not_accepted,
            },
        ]
    );
    assert_eq!(recorded[2].metadata.command, "dep start PAY-1");
    assert_verifies(&fixture, &store, 3).await;
}

#[tokio::test]
async fn a_redelivered_command_appends_nothing() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let ledger = fixture.ledger(&store).await;
    let text = "dobro #PAY-1 https://wiki/x notes";

    let first = ledger
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("recorded");
    let again = ledger
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("answered");
    // A refused command is recorded once too.
    let refused = ledger
        .submit(delivered("bob", "accept PAY-1", "slack:Ev2"))
        .await
        .expect("recorded");
    let refused_again = ledger
        .submit(delivered("bob", "accept PAY-1", "slack:Ev2"))
        .await
        .expect("answered");

    assert_eq!(
        first.result,
        Decision::Accepted(vec![requested("PAY-1", "bob", true)])
    );
    assert_eq!(again.result, Decision::AlreadyRecorded);
    assert!(matches!(refused.result, Decision::Refused(_)));
    assert_eq!(refused_again.result, Decision::AlreadyRecorded);
    let recorded = fixture.events(&store).await;
    assert_eq!(recorded.len(), 2);
    assert_eq!(ledger.snapshot().revision, Some(1));
    assert_verifies(&fixture, &store, 2).await;

    // A new writer loads the deliveries from the stream.
    let reopened = fixture.ledger(&store).await;
    let after_restart = reopened
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("answered");
    assert_eq!(after_restart.result, Decision::AlreadyRecorded);
    assert_eq!(fixture.events(&store).await.len(), 2);
}

#[tokio::test]
async fn one_batch_with_the_same_delivery_twice_records_it_once() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let ledger = fixture.ledger(&store).await;
    let text = "dobro #PAY-1 https://wiki/x notes";

    let (a, b) = tokio::join!(
        ledger.submit(delivered("bob", text, "slack:Ev1")),
        ledger.submit(delivered("bob", text, "slack:Ev1")),
    );

    let results = [a.expect("answered").result, b.expect("answered").result];
    assert_eq!(
        results,
        [
            Decision::Accepted(vec![requested("PAY-1", "bob", true)]),
            Decision::AlreadyRecorded
        ]
    );
    assert_eq!(fixture.events(&store).await.len(), 1);
    assert_verifies(&fixture, &store, 1).await;
}

#[tokio::test]
async fn a_delivery_recorded_by_one_replica_is_not_recorded_again_by_another() {
    let fixture = Fixture::new();
    let (store_a, store_b) = (fixture.store().await, fixture.store().await);
    let text = "dobro #PAY-1 https://wiki/x notes";

    // Replica B is running before A records the delivery, so only the store knows it.
    let replica_a = fixture.ledger(&store_a).await;
    let replica_b = fixture.ledger(&store_b).await;
    let first = replica_a
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("recorded by A");
    let redelivered = replica_b
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("answered by B");

    assert_eq!(
        first.result,
        Decision::Accepted(vec![requested("PAY-1", "bob", true)])
    );
    assert_eq!(redelivered.result, Decision::AlreadyRecorded);
    assert_eq!(fixture.events(&store_a).await.len(), 1);

    // B goes on from the stored chain, not from its own draft of the repeat.
    let accepted = submit(&replica_b, "alice", "accept PAY-1").await;
    assert_eq!(
        accepted.result,
        Decision::Accepted(vec![Event::ReleaseApproved {
            ticket: ticket("PAY-1"),
            approver: user("alice"),
        }])
    );
    assert_eq!(accepted.revision, 1);

    // A replica opened afterwards learns the delivery when it loads the stream.
    let replica_c = fixture.ledger(&fixture.store().await).await;
    let late = replica_c
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("answered by C");
    assert_eq!(late.result, Decision::AlreadyRecorded);
    assert_eq!(fixture.events(&store_a).await.len(), 2);
    assert_verifies(&fixture, &store_a, 2).await;
}

#[tokio::test]
async fn a_batch_mixing_a_known_delivery_with_new_commands_records_the_new_ones() {
    let fixture = Fixture::new();
    let (store_a, store_b) = (fixture.store().await, fixture.store().await);
    let replica_a = fixture.ledger(&store_a).await;
    let replica_b = fixture.ledger(&store_b).await;
    let text = "dobro #PAY-1 https://wiki/x notes";
    replica_a
        .submit(delivered("bob", text, "slack:Ev1"))
        .await
        .expect("recorded by A");

    // B gets the redelivery and a new command together: one batch.
    let (redelivered, new) = tokio::join!(
        replica_b.submit(delivered("bob", text, "slack:Ev1")),
        replica_b.submit(delivered(
            "carol",
            "dobro #PAY-2 https://wiki/x notes",
            "slack:Ev2"
        )),
    );

    assert_eq!(
        redelivered.expect("answered").result,
        Decision::AlreadyRecorded
    );
    let new = new.expect("recorded");
    assert_eq!(
        new.result,
        Decision::Accepted(vec![requested("PAY-2", "carol", true)])
    );
    assert_eq!(new.revision, 1);
    assert_eq!(fixture.events(&store_a).await.len(), 2);
    assert_verifies(&fixture, &store_a, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_commands_are_all_answered_and_recorded() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let ledger = fixture.ledger(&store).await;

    let tasks: Vec<_> = (1..=200)
        .map(|n| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let text = format!("dobro #PAY-{n} https://wiki/x notes");
                let outcome = ledger.submit(submission("bob", &text)).await;
                (n, outcome)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        let (n, outcome) = task.await.expect("the task ran");
        let outcome = outcome.unwrap_or_else(|e| panic!("PAY-{n} was not recorded: {e}"));
        assert_eq!(
            outcome.result,
            Decision::Accepted(vec![requested(&format!("PAY-{n}"), "bob", true)])
        );
        outcomes.push(outcome);
    }

    let recorded = fixture.events(&store).await;
    assert_eq!(recorded.len(), 200);
    for (expected, r) in (0u64..).zip(&recorded) {
        assert_eq!(r.revision, expected);
    }
    let answered: BTreeSet<u64> = outcomes.iter().map(|o| o.revision).collect();
    assert_eq!(answered, (0..200).collect::<BTreeSet<u64>>());
    let tickets: BTreeSet<TicketKey> = recorded
        .iter()
        .filter_map(|r| r.event.ticket().cloned())
        .collect();
    assert_eq!(
        tickets,
        (1..=200).map(|n| ticket(&format!("PAY-{n}"))).collect()
    );
    // Each append hands every command of its batch the same state.
    let batches = distinct_states(&outcomes);
    assert!(batches < 200, "one append per command: {batches} batches");
    assert_verifies(&fixture, &store, 200).await;
}

#[tokio::test(flavor = "current_thread")]
async fn commands_that_queue_up_are_appended_in_batches_of_at_most_max_batch() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let options = Options {
        max_batch: 64,
        ..Options::default()
    };
    let ledger = fixture.ledger_with(&store, options).await;

    // On one thread the submissions queue up faster than the writer takes them (how many it
    // finds at each turn depends on tokio's scheduling budget, so the batch bounds are not
    // fixed): each append takes what has queued, up to 64.
    let submissions = (1..=200).map(|n| {
        ledger.submit(submission(
            "bob",
            &format!("dobro #PAY-{n} https://wiki/x notes"),
        ))
    });
    let outcomes: Vec<Outcome> = futures::future::join_all(submissions)
        .await
        .into_iter()
        .map(|o| o.expect("recorded"))
        .collect();

    let revisions: BTreeSet<u64> = outcomes.iter().map(|o| o.revision).collect();
    assert_eq!(revisions, (0..200).collect::<BTreeSet<u64>>());
    let batches = batches(&outcomes);
    assert!(
        batches.len() >= 4 && batches.len() < 200,
        "200 commands in batches of at most 64: {} batches",
        batches.len()
    );
    let mut next = 0;
    for batch in &batches {
        assert!(batch.len() <= 64, "a batch of {}", batch.len());
        // A batch is a run of revisions, and its state holds every release of it and before.
        assert_eq!(batch[0].revision, next, "batches follow each other");
        for (i, o) in batch.iter().enumerate() {
            assert_eq!(o.revision, next + i as u64);
        }
        next += batch.len() as u64;
        assert_eq!(batch[0].state.releases.len() as u64, next);
    }
    assert_verifies(&fixture, &store, 200).await;
}

/// The outcomes grouped by the append that answered them (a batch shares one `Arc<State>`),
/// in revision order.
fn batches(outcomes: &[Outcome]) -> Vec<Vec<&Outcome>> {
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.revision);
    let mut batches: Vec<Vec<&Outcome>> = Vec::new();
    for o in sorted {
        match batches.last_mut() {
            Some(batch) if Arc::ptr_eq(&batch[0].state, &o.state) => batch.push(o),
            _ => batches.push(vec![o]),
        }
    }
    batches
}

/// How many batches answered these outcomes: a batch shares one `Arc<State>`.
fn distinct_states(outcomes: &[Outcome]) -> usize {
    let mut seen: Vec<&Arc<dobrobot::domain::State>> = Vec::new();
    for o in outcomes {
        if !seen.iter().any(|s| Arc::ptr_eq(s, &o.state)) {
            seen.push(&o.state);
        }
    }
    seen.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ledgers_on_one_file_race_dep_start_and_exactly_one_wins_each_round() {
    const ROUNDS: usize = 200;
    let fixture = Fixture::new();
    let (store_a, store_b) = (fixture.store().await, fixture.store().await);
    let ledger_a = fixture.ledger(&store_a).await;
    let ledger_b = fixture.ledger(&store_b).await;
    let mut wins = [0usize; 2];

    for round in 1..=ROUNDS {
        // API-n (api) and PAY-n (billing): different services, one conflict group. PAY-n asks
        // first but waits for an admin, so it does not hold API-n's turn; oleg, an admin,
        // starts it and joins it by doing so. Either start may win.
        let (api, pay) = (format!("API-{round}"), format!("PAY-{round}"));
        let prepare = if round % 2 == 0 { &ledger_a } else { &ledger_b };
        let first = submit(
            prepare,
            "carol",
            &format!("dobro #{pay} https://wiki/x notes"),
        )
        .await;
        let prepared = futures::future::join_all([
            prepare.submit(submission(
                "bob",
                &format!("dobro #{api} https://wiki/x notes no_need_admin"),
            )),
            prepare.submit(submission("alice", &format!("accept {api}"))),
            prepare.submit(submission("alice", &format!("accept {pay}"))),
        ])
        .await;
        for outcome in std::iter::once(Ok(first)).chain(prepared) {
            let outcome = outcome.expect("prepared");
            assert!(
                matches!(outcome.result, Decision::Accepted(_)),
                "round {round}: {:?}",
                outcome.result
            );
        }

        let (a, b) = tokio::join!(
            ledger_a.submit(submission("bob", &format!("dep start {api}"))),
            ledger_b.submit(submission("oleg", &format!("dep start {pay}"))),
        );
        let (a, b) = (a.expect("A answered"), b.expect("B answered"));
        let start = |key: &str, by: &str, services: &str| Event::DeploymentStarted {
            ticket: ticket(key),
            by: user(by),
            services: vec![service(services)],
            conflict_groups: vec![GroupName::parse("backend-core").unwrap()],
        };
        let started = |key: &str, by: &str, services: &str| {
            Decision::Accepted(vec![start(key, by, services)])
        };
        let joined_and_started = |key: &str, by: &str, services: &str| {
            let joined = Event::AdminJoined {
                ticket: ticket(key),
                admin: user(by),
            };
            Decision::Accepted(vec![joined, start(key, by, services)])
        };
        let (winner, loser, winner_ledger) = match (&a.result, &b.result) {
            (Decision::Accepted(_), Decision::Refused(refusal)) => {
                assert_eq!(a.result, started(&api, "bob", "api"), "round {round}");
                wins[0] += 1;
                (
                    (api.as_str(), "bob"),
                    (pay.as_str(), "carol", refusal),
                    &ledger_a,
                )
            }
            (Decision::Refused(refusal), Decision::Accepted(_)) => {
                assert_eq!(
                    b.result,
                    joined_and_started(&pay, "oleg", "billing"),
                    "round {round}"
                );
                wins[1] += 1;
                (
                    (pay.as_str(), "oleg"),
                    (api.as_str(), "bob", refusal),
                    &ledger_b,
                )
            }
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        };
        match loser.2 {
            Refusal::LockHeld {
                lock,
                ticket: holder,
                by,
                ..
            } => {
                assert_eq!(
                    lock,
                    &LockKey::Group(GroupName::parse("backend-core").unwrap())
                );
                assert_eq!(holder, &ticket(winner.0));
                assert_eq!(by, &user(winner.1));
            }
            other => panic!("round {round}: {} refused for {other:?}", loser.0),
        }

        let finished = submit(winner_ledger, winner.1, &format!("dep finish {}", winner.0)).await;
        assert!(
            matches!(finished.result, Decision::Accepted(_)),
            "round {round}"
        );
        // The loser's requester withdraws it.
        let requester = if loser.0 == api { "bob" } else { "carol" };
        let cancelled = submit(winner_ledger, requester, &format!("cancel {}", loser.0)).await;
        assert!(
            matches!(cancelled.result, Decision::Accepted(_)),
            "round {round}"
        );
    }

    let recorded = fixture.events(&store_a).await;
    // Per round: 2 requests, 2 approvals, 1 start, 1 refused start, 1 finish, 1 cancel, and
    // the admin's join when PAY-n won.
    assert_eq!(recorded.len(), ROUNDS * 8 + wins[1]);
    let starts: Vec<&TicketKey> = recorded
        .iter()
        .filter_map(|r| match &r.event {
            Event::DeploymentStarted { ticket, .. } => Some(ticket),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), ROUNDS);
    let refused_starts = recorded
        .iter()
        .filter(|r| {
            matches!(
                &r.event,
                Event::CommandRefused { command, refusal: Refusal::LockHeld { .. }, .. }
                    if command == "dep start"
            )
        })
        .count();
    assert_eq!(refused_starts, ROUNDS);
    assert_eq!(wins[0] + wins[1], ROUNDS);
    assert_verifies(&fixture, &store_a, (ROUNDS * 8 + wins[1]) as u64).await;
}

/// Replaces the stored data of the event at `revision`.
fn overwrite_data(fixture: &Fixture, revision: u64, data: &[u8]) {
    let changed = fixture
        .sqlite()
        .execute(
            "UPDATE events SET data = ?1 WHERE stream = ?2 AND revision = ?3",
            params![data, fixture.stream, revision as i64],
        )
        .expect("update the row");
    assert_eq!(changed, 1);
}

async fn bad_event(fixture: &Fixture) -> Box<verify::BadEvent> {
    let store = fixture.store().await;
    match verify::verify(&store, &fixture.stream).await {
        Err(VerifyError::Bad(bad)) => bad,
        other => panic!("verify should name a bad event, got {other:?}"),
    }
}

#[tokio::test]
async fn verify_names_an_event_whose_data_was_edited() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    record_seed_flow(&fixture, &store).await;
    assert_verifies(&fixture, &store, 5).await;

    // mallory claims to have been the admin who joined PAY-1.
    overwrite_data(&fixture, 2, br#"{"ticket":"PAY-1","admin":"mallory"}"#);

    let bad = bad_event(&fixture).await;
    assert_eq!(bad.revision, 2);
    assert_eq!(bad.event_type, "AdminJoined");
    assert!(
        matches!(
            bad.problem,
            Problem::Chain(envelope::ChainError::Tampered { .. })
        ),
        "{:?}",
        bad.problem
    );
}

#[tokio::test]
async fn verify_names_an_event_whose_metadata_was_edited() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    record_seed_flow(&fixture, &store).await;
    let recorded = fixture.events(&store).await;
    let mut metadata = serde_json::to_value(&recorded[1].metadata).expect("metadata serializes");
    metadata["command"] = serde_json::json!("accept PAY-1 (typed by someone else)");
    fixture
        .sqlite()
        .execute(
            "UPDATE events SET metadata = ?1 WHERE stream = ?2 AND revision = 1",
            params![serde_json::to_vec(&metadata).expect("JSON"), fixture.stream],
        )
        .expect("update the row");

    let bad = bad_event(&fixture).await;
    assert_eq!(bad.revision, 1);
    assert!(
        matches!(
            bad.problem,
            Problem::Chain(envelope::ChainError::Tampered { .. })
        ),
        "{:?}",
        bad.problem
    );
}

#[tokio::test]
async fn an_edit_that_rehashes_the_event_breaks_the_link_to_the_next() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    record_seed_flow(&fixture, &store).await;
    let recorded = fixture.events(&store).await;

    // A forger who knows the hashing seals the edited event anew; its successor still names
    // the old hash.
    let original = &recorded[2];
    let forged = Event::AdminJoined {
        ticket: ticket("PAY-1"),
        admin: user("mallory"),
    };
    let context = Context {
        actor: original.metadata.actor.clone(),
        correlation_id: original.metadata.correlation_id,
        causation_id: original.metadata.causation_id,
        command: original.metadata.command.clone(),
        recorded_at: original.metadata.recorded_at,
    };
    let (sealed, _) = envelope::seal(&forged, original.id, &context, &original.metadata.prev_hash);
    fixture
        .sqlite()
        .execute(
            "UPDATE events SET data = ?1, metadata = ?2 WHERE stream = ?3 AND revision = 2",
            params![sealed.data, sealed.metadata, fixture.stream],
        )
        .expect("update the row");

    let bad = bad_event(&fixture).await;
    assert_eq!(bad.revision, 3);
    assert_eq!(bad.event_type, "DeploymentStarted");
    assert!(
        matches!(
            bad.problem,
            Problem::Chain(envelope::ChainError::BrokenLink { .. })
        ),
        "{:?}",
        bad.problem
    );
}

#[tokio::test]
async fn verify_finds_a_removed_event_as_a_gap() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    record_seed_flow(&fixture, &store).await;

    let deleted = fixture
        .sqlite()
        .execute(
            "DELETE FROM events WHERE stream = ?1 AND revision = 2",
            params![fixture.stream],
        )
        .expect("delete the row");
    assert_eq!(deleted, 1);

    let bad = bad_event(&fixture).await;
    assert_eq!(bad.revision, 3);
    assert!(
        matches!(bad.problem, Problem::Gap { expected: 2 }),
        "{:?}",
        bad.problem
    );
}

#[tokio::test]
async fn verify_finds_a_removed_event_whose_gap_was_closed_as_a_broken_link() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    record_seed_flow(&fixture, &store).await;

    let conn = fixture.sqlite();
    conn.execute(
        "DELETE FROM events WHERE stream = ?1 AND revision = 2",
        params![fixture.stream],
    )
    .expect("delete the row");
    for revision in 3..=4i64 {
        conn.execute(
            "UPDATE events SET revision = ?1 WHERE stream = ?2 AND revision = ?3",
            params![revision - 1, fixture.stream, revision],
        )
        .expect("renumber the row");
    }

    let bad = bad_event(&fixture).await;
    assert_eq!(bad.revision, 2);
    assert_eq!(bad.event_type, "DeploymentStarted");
    assert!(
        matches!(
            bad.problem,
            Problem::Chain(envelope::ChainError::BrokenLink { .. })
        ),
        "{:?}",
        bad.problem
    );
}

#[tokio::test]
async fn the_ledgers_time_never_goes_back_when_a_clock_does() {
    let fixture = Fixture::new();
    let store = fixture.store().await;
    let clock = support::fixtures::TestClock::new(support::fixtures::monday());
    let ledger = fixture
        .ledger_with(
            &store,
            Options {
                clock: clock.clock(),
                ..Options::default()
            },
        )
        .await;
    submit(&ledger, "bob", "dobro #PAY-1 https://wiki/x notes").await;
    // Another process whose clock is an hour behind appends next.
    clock.set(support::fixtures::monday() - chrono::Duration::hours(1));
    submit(&ledger, "alice", "accept PAY-1").await;
    clock.set(support::fixtures::monday() + chrono::Duration::minutes(5));
    submit(&ledger, "oleg", "here PAY-1").await;
    let times: Vec<_> = fixture
        .events(&store)
        .await
        .iter()
        .map(|e| e.metadata.recorded_at)
        .collect();
    let monday = support::fixtures::monday();
    assert_eq!(
        times,
        [monday, monday, monday + chrono::Duration::minutes(5)]
    );
    assert_verifies(&fixture, &store, 3).await;
}
