//! Reminders and the waitlist against a real SQLite ledger, with a clock the test moves.
//!
//! The scheduler is the real one (`reminders::Scheduler`); in the first part only where it
//! posts is a recorder (`ReminderSink`). Two ledgers on one file are two replicas; a new ledger
//! on the file is a restart. The second part runs the whole app (`App::build`) against the fake
//! Slack: reminders in the release message's thread, the waitlist's direct messages.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use insta::assert_snapshot;
use tempfile::TempDir;

use dobrobot::domain::reminders::{QuietHours, ReminderSettings};
use dobrobot::domain::{Due, Event, Input, Policy, ReminderKind, parse, queue};
use dobrobot::envelope::{self, Actor, Recorded, Source};
use dobrobot::ledger::{self, Decision, Ledger, Options, Outcome, Submission};
use dobrobot::projections::{self, AsOf, Waitlist};
use dobrobot::reminders::{ReminderSink, Scheduler, SinkError, Tick};
use dobrobot::render::Renderer;
use dobrobot::store::{self, Direction, EventStore, ReadFrom};
use dobrobot::verify;
use support::fixtures::{TestClock, monday, role, t, u};

use ReminderKind::{Approval, Escalation, OverdueDeployment, StaleLock};

// ---------------------------------------------------------------------------------------------
// Fixture

const DEV: &str = "U0DEV";
const EVE: &str = "U0EVE";
const FAY: &str = "U0FAY";
const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";
const OLEG: &str = "U0OLEG";

/// The shared policy, with Slack user ids in the roles.
fn policy() -> Policy {
    Policy {
        approvers: [u(ALICE), u(BOB)].into(),
        admins: [u(OLEG)].into(),
        ..support::fixtures::policy()
    }
}

fn settings() -> ReminderSettings {
    ReminderSettings {
        backup_approvers: vec![role("S0BACKUP")],
        ..ReminderSettings::default()
    }
}

/// A SQLite file in a temp dir.
struct Site {
    _dir: TempDir,
    url: String,
    stream: String,
    time: TestClock,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        Site {
            _dir: dir,
            url,
            stream: ledger::stream_name("test"),
            time: TestClock::new(monday()),
        }
    }

    async fn store(&self) -> Arc<dyn EventStore> {
        store::open(&self.url).await.expect("open the SQLite store")
    }

    /// The waitlist folded from the ledger on the file.
    async fn waitlist(&self) -> Waitlist {
        let mut waitlist = Waitlist::default();
        projections::build(
            &self.store().await,
            &self.stream,
            AsOf::Latest,
            &mut waitlist,
        )
        .await
        .expect("the ledger reads");
        waitlist
    }

    /// A replica: its own store instance and ledger writer on the file.
    async fn replica(&self) -> Replica {
        let store = self.store().await;
        let ledger = Ledger::open(
            store.clone(),
            self.stream.clone(),
            Arc::new(policy()),
            Options {
                clock: self.time.clock(),
                ..Options::default()
            },
        )
        .await
        .expect("open the ledger");
        let posts = Arc::new(Posts::default());
        let scheduler = Scheduler::new(
            ledger.clone(),
            settings(),
            Renderer::slack(None),
            self.time.clock(),
            posts.clone(),
        );
        Replica {
            store,
            ledger,
            scheduler,
            posts,
        }
    }

    /// The same with other settings.
    async fn replica_with(&self, settings: ReminderSettings) -> Replica {
        let mut replica = self.replica().await;
        replica.scheduler = Scheduler::new(
            replica.ledger.clone(),
            settings,
            Renderer::slack(None),
            self.time.clock(),
            replica.posts.clone(),
        );
        replica
    }

    fn at(&self, at: DateTime<Utc>) {
        self.time.set(at);
    }

    async fn events(&self) -> Vec<Recorded> {
        self.store()
            .await
            .read(&self.stream, Direction::Forwards, ReadFrom::Start, 100_000)
            .await
            .expect("read the ledger")
            .iter()
            .map(|r| envelope::decode(r).expect("every event decodes"))
            .collect()
    }

    /// Every `ReminderSent` of the ledger, as (ticket, kind).
    async fn reminders_sent(&self) -> Vec<(String, ReminderKind)> {
        self.events()
            .await
            .into_iter()
            .filter_map(|r| match r.event {
                Event::ReminderSent { ticket, kind, .. } => Some((ticket.to_string(), kind)),
                _ => None,
            })
            .collect()
    }

    async fn refusals(&self) -> usize {
        self.events()
            .await
            .iter()
            .filter(|r| matches!(r.event, Event::CommandRefused { .. }))
            .count()
    }
}

/// What a sink was given.
#[derive(Default)]
struct Posts {
    posted: Mutex<Vec<(String, ReminderKind, String)>>,
    failing: AtomicBool,
}

#[async_trait]
impl ReminderSink for Posts {
    async fn remind(&self, due: &Due, text: &str) -> Result<(), SinkError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("service_unavailable".into());
        }
        self.posted
            .lock()
            .unwrap()
            .push((due.ticket.to_string(), due.kind, text.to_string()));
        Ok(())
    }
}

impl Posts {
    fn kinds(&self) -> Vec<(String, ReminderKind)> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .map(|(ticket, kind, _)| (ticket.clone(), *kind))
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, text)| text.clone())
            .collect()
    }
}

struct Replica {
    store: Arc<dyn EventStore>,
    ledger: Ledger,
    scheduler: Scheduler,
    posts: Arc<Posts>,
}

impl Replica {
    /// `who` types `text` in Slack.
    async fn say(&self, who: &str, text: &str) -> Outcome {
        let Ok(Input::Command(command)) = parse(text) else {
            panic!("`{text}` is not a command");
        };
        let submission = Submission {
            command,
            actor: Actor {
                id: u(who),
                name: who.to_string(),
                source: Source::Slack,
            },
            text: text.to_string(),
            delivery: None,
            correlation_id: None,
        };
        self.ledger.submit(submission).await.expect("recorded")
    }

    async fn done(&self, who: &str, text: &str) -> Vec<Event> {
        match self.say(who, text).await.result {
            Decision::Accepted(events) => events,
            other => panic!("`{text}` by {who}: {other:?}"),
        }
    }

    async fn tick(&mut self) -> Tick {
        self.scheduler.tick().await
    }
}

fn kinds(tick: &Tick) -> Vec<(String, ReminderKind)> {
    tick.posted
        .iter()
        .map(|d| (d.ticket.to_string(), d.kind))
        .collect()
}

fn pay(kind: ReminderKind) -> (String, ReminderKind) {
    ("PAY-1".to_string(), kind)
}

// ---------------------------------------------------------------------------------------------
// Reminders

#[tokio::test]
async fn each_reminder_falls_due_in_its_stage_and_is_recorded_and_posted_once() {
    let site = Site::new();
    let mut replica = site.replica().await;
    let start = monday();
    replica
        .done(DEV, "dobro PAY-1 https://wiki/x fix the invoices")
        .await;

    site.at(start + Duration::minutes(29));
    assert_eq!(replica.tick().await, Tick::default());
    site.at(start + Duration::minutes(30));
    assert_eq!(kinds(&replica.tick().await), [pay(Approval)]);
    site.at(start + Duration::minutes(31));
    assert_eq!(replica.tick().await, Tick::default());
    site.at(start + Duration::minutes(60));
    assert_eq!(kinds(&replica.tick().await), [pay(Escalation)]);
    site.at(start + Duration::minutes(90));
    assert_eq!(replica.tick().await, Tick::default());

    site.at(start + Duration::minutes(100));
    replica.done(ALICE, "accept PAY-1").await;
    replica.done(OLEG, "here PAY-1").await;
    site.at(start + Duration::minutes(110));
    replica.done(DEV, "dep start PAY-1").await;
    let started = start + Duration::minutes(110);
    site.at(started + Duration::minutes(59));
    assert_eq!(replica.tick().await, Tick::default());
    site.at(started + Duration::minutes(60));
    assert_eq!(kinds(&replica.tick().await), [pay(OverdueDeployment)]);
    site.at(started + Duration::hours(4));
    assert_eq!(kinds(&replica.tick().await), [pay(StaleLock)]);
    site.at(started + Duration::hours(9));
    assert_eq!(replica.tick().await, Tick::default());

    let all = [
        pay(Approval),
        pay(Escalation),
        pay(OverdueDeployment),
        pay(StaleLock),
    ];
    assert_eq!(replica.posts.kinds(), all);
    assert_eq!(site.reminders_sent().await, all);
    assert_eq!(site.refusals().await, 0, "no reminder refusal is recorded");
    // Recorded by the system, and valid against schemas/ReminderSent.json.
    for recorded in site.events().await {
        if let Event::ReminderSent { by, .. } = &recorded.event {
            assert_eq!(by.as_str(), "dobrobot");
            assert_eq!(recorded.metadata.actor.source, Source::System);
        }
    }
    verify::verify(&replica.store, &site.stream)
        .await
        .expect("the ledger verifies");

    let texts = replica.posts.texts();
    assert_snapshot!(texts[0], @"<@U0ALICE> <@U0BOB> PAY-1 by <@U0DEV> has waited 30 min for approval. `accept PAY-1` or `reject PAY-1 &lt;reason&gt;`.");
    assert_snapshot!(texts[1], @"<!subteam^S0BACKUP> PAY-1 by <@U0DEV> has waited 1 h for approval and nobody has answered. Please `accept PAY-1` or `reject PAY-1 &lt;reason&gt;`.");
    assert_snapshot!(texts[2], @"<@U0DEV> <@U0OLEG> The deployment of PAY-1 has been running for 1 h, longer than expected. Finish it with `dep finish PAY-1` or roll back with `dep rollback PAY-1 &lt;reason&gt;`.");
    assert_snapshot!(texts[3], @"<@U0DEV> <@U0OLEG> Stale lock: the deployment of PAY-1 has held the billing lock and the backend-core group lock since 2026-03-02 10:50 UTC (4 h). Others cannot deploy until it finishes (`dep finish PAY-1`) or rolls back (`dep rollback PAY-1 &lt;reason&gt;`), or an admin takes it over (`dep takeover PAY-1 &lt;reason&gt;`).");
}

#[tokio::test]
async fn a_release_that_moved_on_is_not_reminded() {
    let site = Site::new();
    let mut replica = site.replica().await;
    replica.done(DEV, "dobro PAY-1 https://wiki/x").await;
    site.at(monday() + Duration::minutes(20));
    replica.done(ALICE, "accept PAY-1").await;
    site.at(monday() + Duration::hours(3));
    assert_eq!(replica.tick().await, Tick::default());
    replica.done(DEV, "cancel PAY-1").await;
    site.at(monday() + Duration::days(2));
    assert_eq!(replica.tick().await, Tick::default());
    assert_eq!(site.reminders_sent().await, []);
}

#[tokio::test]
async fn a_second_replica_on_the_same_file_does_not_send_again() {
    let site = Site::new();
    let mut a = site.replica().await;
    a.done(DEV, "dobro PAY-1 https://wiki/x").await;
    // B starts after the request, so it knows it; it has not seen anything since.
    let mut b = site.replica().await;

    site.at(monday() + Duration::minutes(30));
    assert_eq!(kinds(&a.tick().await), [pay(Approval)]);
    // B's state is behind: it finds the reminder due, loses the append, learns it was sent.
    let tick = b.tick().await;
    assert_eq!(tick.posted, []);
    assert_eq!(tick.skipped.len(), 1);
    assert_eq!(b.tick().await, Tick::default());

    // Both at once, for the escalation: one of them posts it.
    site.at(monday() + Duration::minutes(60));
    let (ta, tb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(ta.posted.len() + tb.posted.len(), 1, "{ta:?} {tb:?}");
    assert_eq!(
        [a.posts.kinds(), b.posts.kinds()].concat(),
        [pay(Approval), pay(Escalation)]
    );
    assert_eq!(
        site.reminders_sent().await,
        [pay(Approval), pay(Escalation)]
    );
    assert_eq!(site.refusals().await, 0);
}

#[tokio::test]
async fn a_replica_behind_the_ledger_does_not_remind_what_moved_on() {
    let site = Site::new();
    let a = site.replica().await;
    a.done(DEV, "dobro PAY-1 https://wiki/x").await;
    let mut b = site.replica().await;
    site.at(monday() + Duration::minutes(10));
    a.done(ALICE, "accept PAY-1").await;
    // B still sees PAY-1 waiting for approval; the ledger refuses the reminder, records
    // nothing, and B posts nothing.
    site.at(monday() + Duration::minutes(45));
    let tick = b.tick().await;
    assert_eq!(tick.posted, []);
    assert_eq!(tick.skipped.len(), 1);
    assert_eq!(b.posts.kinds(), []);
    assert_eq!(site.reminders_sent().await, []);
    assert_eq!(
        site.refusals().await,
        0,
        "a reminder's refusal is not recorded"
    );
    assert_eq!(b.tick().await, Tick::default());
}

#[tokio::test]
async fn after_a_restart_nothing_is_sent_again() {
    let site = Site::new();
    let mut first = site.replica().await;
    first.done(DEV, "dobro PAY-1 https://wiki/x").await;
    site.at(monday() + Duration::minutes(45));
    assert_eq!(kinds(&first.tick().await), [pay(Approval)]);
    drop(first);

    let mut restarted = site.replica().await;
    assert_eq!(restarted.tick().await, Tick::default());
    site.at(monday() + Duration::minutes(61));
    assert_eq!(kinds(&restarted.tick().await), [pay(Escalation)]);
    drop(restarted);

    let mut again = site.replica().await;
    site.at(monday() + Duration::hours(5));
    assert_eq!(again.tick().await, Tick::default());
    assert_eq!(
        site.reminders_sent().await,
        [pay(Approval), pay(Escalation)]
    );
}

#[tokio::test]
async fn quiet_hours_hold_reminders_until_morning() {
    let site = Site::new();
    let quiet = ReminderSettings {
        quiet_hours: Some(QuietHours::parse("22:00-08:00").unwrap()),
        ..settings()
    };
    let mut replica = site.replica_with(quiet).await;
    let evening = Utc.with_ymd_and_hms(2026, 3, 2, 21, 45, 0).unwrap();
    site.at(evening);
    replica.done(DEV, "dobro PAY-1 https://wiki/x").await;
    for (h, m) in [(22, 15), (23, 59), (0, 0), (3, 0), (7, 59)] {
        let day = if h >= 22 { 2 } else { 3 };
        site.at(Utc.with_ymd_and_hms(2026, 3, day, h, m, 0).unwrap());
        assert_eq!(replica.tick().await, Tick::default(), "{h}:{m:02}");
    }
    // What fell due in the night goes out when it ends: the escalation, not both.
    site.at(Utc.with_ymd_and_hms(2026, 3, 3, 8, 0, 0).unwrap());
    assert_eq!(kinds(&replica.tick().await), [pay(Escalation)]);
    assert_snapshot!(replica.posts.texts()[0], @"<!subteam^S0BACKUP> PAY-1 by <@U0DEV> has waited 10 h 15 min for approval and nobody has answered. Please `accept PAY-1` or `reject PAY-1 &lt;reason&gt;`.");
}

#[tokio::test]
async fn a_post_that_fails_is_tried_again_and_recorded_once() {
    let site = Site::new();
    let mut replica = site.replica().await;
    replica.done(DEV, "dobro PAY-1 https://wiki/x").await;
    replica.posts.failing.store(true, Ordering::SeqCst);
    site.at(monday() + Duration::minutes(30));
    let tick = replica.tick().await;
    assert_eq!((tick.posted.len(), tick.unposted), (0, 1));
    replica.posts.failing.store(false, Ordering::SeqCst);
    site.at(monday() + Duration::minutes(31));
    assert_eq!(kinds(&replica.tick().await), [pay(Approval)]);
    assert_eq!(replica.tick().await, Tick::default());
    assert_eq!(site.reminders_sent().await, [pay(Approval)]);
}

// ---------------------------------------------------------------------------------------------
// The waitlist

#[tokio::test]
async fn the_waitlist_is_the_ledgers_in_order_and_survives_a_restart() {
    let site = Site::new();
    let replica = site.replica().await;
    for (who, ticket) in [(DEV, "PAY-1"), (EVE, "PAY-2"), (FAY, "PAY-3")] {
        replica
            .done(who, &format!("dobro {ticket} https://wiki/x"))
            .await;
        replica.done(ALICE, &format!("accept {ticket}")).await;
        replica.done(OLEG, &format!("here {ticket}")).await;
    }
    replica.done(DEV, "dep start PAY-1").await;
    // PAY-2 and PAY-3 are held up by PAY-1's lock; fay asks first.
    for (who, ticket) in [(FAY, "PAY-3"), (EVE, "PAY-2"), (FAY, "PAY-3")] {
        let outcome = replica.say(who, &format!("dep start {ticket}")).await;
        assert!(
            matches!(outcome.result, Decision::Refused(_)),
            "{outcome:?}"
        );
    }
    replica.done(DEV, "dep finish PAY-1").await;
    let waitlist = site.waitlist().await;
    assert_eq!(
        waitlist.waiting_on(&t("PAY-1")),
        [(u(FAY), t("PAY-3")), (u(EVE), t("PAY-2"))]
    );
    // What each of them is told, with their release as the queue shows it now.
    let items = queue(&replica.ledger.snapshot().state, &policy());
    let renderer = Renderer::plain(None);
    let told: Vec<String> = waitlist
        .waiting_on(&t("PAY-1"))
        .iter()
        .enumerate()
        .map(|(place, (_, ticket))| {
            let item = items.iter().find(|i| &i.ticket == ticket).expect("queued");
            renderer.waitlist_freed(&t("PAY-1"), item, place + 1)
        })
        .collect();
    assert_snapshot!(told[0], @"The deployment of PAY-1 is over and its locks are free. You were #1 waiting to start PAY-3. PAY-3 still waits for its turn (after PAY-2, for billing).");
    assert_snapshot!(told[1], @"The deployment of PAY-1 is over and its locks are free. You were #2 waiting to start PAY-2. You can `dep start PAY-2` now.");

    // The waitlist is the ledger's: a restarted process reads the same one.
    drop(replica);
    let restarted = site.replica().await;
    assert_eq!(site.waitlist().await, waitlist);
    // Once eve starts, she is off it.
    restarted.done(EVE, "dep start PAY-2").await;
    assert_eq!(
        site.waitlist().await.waiting_on(&t("PAY-1")),
        [(u(FAY), t("PAY-3"))]
    );
}

// ---------------------------------------------------------------------------------------------
// Through Slack: the whole app, as `serve` builds it; the fake Slack records what Slack would
// show.

mod through_slack {
    use dobrobot::app::Settings;
    use fake_slack::FakeSlack;
    use serde_json::Value;

    use super::support::app::{TestApp, slack_config};
    use super::support::slack::text_of;
    use super::*;

    /// The app on a clock the test moves, with the scheduler looking every 50 ms.
    async fn start(time: &TestClock) -> TestApp {
        let slack = Arc::new(FakeSlack::start().await);
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = slack_config(&slack, &dir);
        config.slack.backup_approvers = vec![role("S0BACKUP")];
        TestApp::build(slack, Arc::new(dir), config, settings_at(time)).await
    }

    fn settings_at(time: &TestClock) -> Settings {
        Settings {
            ledger: Options {
                clock: time.clock(),
                ..Options::default()
            },
            reminder_interval: std::time::Duration::from_millis(50),
            ..Settings::serve()
        }
    }

    /// `user` runs `text` with the slash command.
    async fn say(app: &TestApp, user: &str, text: &str) {
        app.slash(user, text, &format!("trigger-{user}-{text}"))
            .await;
    }

    fn in_thread(app: &TestApp, ts: &str, contains: &str) -> Vec<String> {
        app.slack
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|p: &Value| p["thread_ts"] == ts && text_of(p).contains(contains))
            .map(|p| text_of(&p).to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_reminder_reaches_slack_in_the_release_messages_thread() {
        let time = TestClock::new(monday());
        let app = start(&time).await;
        say(
            &app,
            "U0CAROL",
            "dobro PAY-1 https://wiki/x fix the invoices",
        )
        .await;
        let ts = app.release_message_ts("PAY-1").await;

        time.set(monday() + Duration::minutes(31));
        let posted = app.wait_thread_reply(&ts, "has waited").await;
        // The approvers as the front expanded the S0APPROVERS group.
        assert_snapshot!(posted, @"<@U0ALICE> <https://tracker.example.com/browse/PAY-1|PAY-1> by <@U0CAROL> has waited 31 min for approval. `accept PAY-1` or `reject PAY-1 &lt;reason&gt;`.");

        time.set(monday() + Duration::minutes(61));
        let escalated = app.wait_thread_reply(&ts, "nobody has answered").await;
        assert!(escalated.starts_with("<!subteam^S0BACKUP> "), "{escalated}");

        // A second replica on the same store and Slack sends nothing more.
        let other = TestApp::build(
            app.slack.clone(),
            app.dir.clone(),
            app.config.clone(),
            settings_at(&time),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(in_thread(&app, &ts, "for approval").len(), 2);
        drop(other);
    }

    /// A stale lock's reminder mentions the admins and carries a Take over button. Pressing it
    /// asks why in a modal; submitted by an admin it ends the deployment, the requester is told
    /// by DM (`notify = "dm"`), and whoever waited for the lock is told it is free.
    #[tokio::test]
    async fn a_stale_lock_reminder_offers_a_take_over_button_that_asks_why() {
        use serde_json::json;

        use super::support::fixtures::WAIT;
        use super::support::slack::{typed, view_submission};

        let time = TestClock::new(monday());
        let slack = Arc::new(FakeSlack::start().await);
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = slack_config(&slack, &dir);
        config.slack.notify = dobrobot::config::Notify::Dm;
        let app = TestApp::build(slack, Arc::new(dir), config, settings_at(&time)).await;
        say(&app, "U0CAROL", "dobro PAY-1 https://wiki/x").await;
        let ts = app.release_message_ts("PAY-1").await;
        say(&app, "U0ALICE", "accept PAY-1").await;
        say(&app, "U0OLEG", "here PAY-1").await;
        say(&app, "U0BOB", "dobro PAY-2 https://wiki/x").await;
        say(&app, "U0ALICE", "accept PAY-2").await;
        say(&app, "U0OLEG", "here PAY-2").await;
        say(&app, "U0CAROL", "dep start PAY-1").await;
        app.wait_ephemeral("U0CAROL", "started").await;
        say(&app, "U0BOB", "dep start PAY-2").await;
        app.wait_ephemeral("U0BOB", "locked").await;

        time.set(monday() + Duration::hours(4) + Duration::minutes(1));
        let reminder = app
            .slack
            .wait_for(
                "chat.postMessage",
                |p| p["thread_ts"] == ts && text_of(p).contains("Stale lock"),
                WAIT,
            )
            .await;
        assert!(text_of(&reminder).contains("<@U0OLEG>"), "{reminder:#}");
        assert_eq!(
            reminder["blocks"][1]["elements"][0],
            json!({"type": "button", "action_id": "takeover", "style": "danger",
                   "text": {"type": "plain_text", "text": "Take over"},
                   "value": "dep takeover PAY-1"})
        );

        // The button is on the reminder, in the release message's thread.
        let reminder_ts = app
            .slack
            .messages(super::support::slack::CHANNEL)
            .into_iter()
            .find(|m| m["thread_ts"] == ts && text_of(m).contains("Stale lock"))
            .and_then(|m| m["ts"].as_str().map(String::from))
            .expect("the reminder is in the thread");

        // Anyone may press it; only an admin's takeover is recorded.
        let before = app.ledger_events().await.len();
        app.press("U0BOB", &reminder_ts, "takeover", "dep takeover PAY-1")
            .await;
        app.slack.wait_for("views.open", |_| true, WAIT).await;
        let modal = app.slack.modals()[0].clone();
        assert_eq!(modal["title"]["text"], "Take over");
        assert_eq!(
            app.ledger_events().await.len(),
            before,
            "a modal records nothing"
        );
        app.interact(&view_submission(
            "U0BOB",
            &modal,
            json!({"reason": {"reason": typed("mine now")}}),
        ))
        .await;
        app.wait_ephemeral("U0BOB", "Only an admin can do that.")
            .await;

        // (Each press needs its own trigger id, which the fixture derives from the message.)
        app.press("U0OLEG", &ts, "takeover", "dep takeover PAY-1")
            .await;
        super::support::fixtures::wait_until(|| async { app.slack.modals().len() == 2 }).await;
        let modal = app.slack.modals()[1].clone();
        app.interact(&view_submission(
            "U0OLEG",
            &modal,
            json!({"reason": {"reason": typed("the runner died\nwith its VM")}}),
        ))
        .await;
        let updated = app.wait_update(&ts, "Taken over").await;
        assert!(
            super::support::slack::pretty(&updated)
                .contains("Taken over by <@U0OLEG>: the runner died with its VM"),
            "{updated:#}"
        );
        assert!(
            app.ledger_events()
                .await
                .iter()
                .any(|e| e.starts_with("DeploymentAbandoned by U0OLEG")),
            "{:?}",
            app.ledger_events().await
        );

        // The requester hears of it by DM; the one who waited for the lock, that it is free.
        let carol = FakeSlack::dm_channel("U0CAROL");
        let told = app
            .slack
            .wait_for(
                "chat.postMessage",
                |p| p["channel"] == carol && text_of(p).contains("taken over"),
                WAIT,
            )
            .await;
        assert!(
            text_of(&told).starts_with(
                "Deployment of your release <https://tracker.example.com/browse/PAY-1|PAY-1> \
                 was taken over by <@U0OLEG>; its locks are free, check what it left \
                 half-done. Reason: the runner died with its VM"
            ),
            "{told:#}"
        );
        let bob = FakeSlack::dm_channel("U0BOB");
        app.slack
            .wait_for(
                "chat.postMessage",
                |p| p["channel"] == bob && text_of(p).contains("its locks are free"),
                WAIT,
            )
            .await;
        // (A new trigger: `say` would repeat the first try's, a delivery already recorded.)
        app.slash("U0BOB", "dep start PAY-2", "trigger-after-the-takeover")
            .await;
        super::support::fixtures::wait_until(|| async {
            app.ledger_events()
                .await
                .iter()
                .any(|e| e.starts_with("DeploymentStarted by U0BOB"))
        })
        .await;
    }

    #[tokio::test]
    async fn the_waitlist_gets_a_dm_when_the_lock_frees() {
        let time = TestClock::new(monday());
        let app = start(&time).await;
        for (user, ticket) in [("U0CAROL", "PAY-1"), ("U0BOB", "PAY-2")] {
            say(&app, user, &format!("dobro {ticket} https://wiki/x")).await;
            say(&app, "U0ALICE", &format!("accept {ticket}")).await;
            say(&app, "U0OLEG", &format!("here {ticket}")).await;
        }
        say(&app, "U0CAROL", "dep start PAY-1").await;
        app.wait_ephemeral("U0CAROL", "started").await;
        say(&app, "U0BOB", "dep start PAY-2").await;
        app.wait_ephemeral("U0BOB", "locked").await;
        say(&app, "U0CAROL", "dep finish PAY-1").await;

        let dm = app.wait_dm("U0BOB").await;
        assert_snapshot!(text_of(&dm), @"The deployment of <https://tracker.example.com/browse/PAY-1|PAY-1> is over and its locks are free. You were #1 waiting to start <https://tracker.example.com/browse/PAY-2|PAY-2>. You can `dep start PAY-2` now.");
    }
}
