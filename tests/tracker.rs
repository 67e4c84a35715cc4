//! Ticket checks in Jira, through the real app (`App::build`, as `serve` builds it) against a
//! fake Jira that answers in Atlassian's shapes (`support::jira`).
//!
//! Each test sends `dobro` through the bot, as every front does, and looks at what the ledger
//! recorded, what the person is told, and what the fake Jira was asked.

use std::time::{Duration, Instant};

use dobrobot::answer::Answer;
use dobrobot::app::{App, AppError, Settings};
use dobrobot::config::{Config, ConfigError, JiraDeployment, Secret, TrackerConfig};
use dobrobot::domain::tracker::{NotCheckedCause, OnUnavailable, TicketInTracker, TrackerCheck};
use dobrobot::domain::{CheckFailure, Event, Refusal};
use dobrobot::envelope::{self, Actor, Source};
use dobrobot::render::Renderer;
use dobrobot::store::{Direction, ReadFrom};
use dobrobot::tracker::jira::FIELDS;
use insta::assert_snapshot;
use serde_json::Value;

mod support;

use support::app::TestApp;
use support::fixtures::u;
use support::jira::{API_TOKEN, EMAIL, FakeJira, Flavour, IssueSpec, PAT, Reply};
use support::slack::{CHANNEL, text_of};

const EVERY_CHECK: [TrackerCheck; 6] = [
    TrackerCheck::Exists,
    TrackerCheck::Status,
    TrackerCheck::FixVersion,
    TrackerCheck::Assignee,
    TrackerCheck::IssueType,
    TrackerCheck::Label,
];

/// `[tracker]` against the fake: a Cloud site, every check on, a 2 s budget.
fn tracker_config(jira: &FakeJira) -> TrackerConfig {
    TrackerConfig {
        base_url: jira.url(),
        deployment: JiraDeployment::Cloud,
        timeout: "2s".into(),
        statuses: vec!["Ready for release".into()],
        status_categories: vec!["done".into()],
        require_fix_version: true,
        require_assignee: true,
        issue_types: vec!["Story".into(), "Bug".into()],
        labels: vec!["release".into()],
        email: Some(EMAIL.into()),
        api_token: Some(Secret(API_TOKEN.into())),
        ..TrackerConfig::default()
    }
}

async fn app_with(jira: &FakeJira, change: impl FnOnce(&mut TrackerConfig)) -> TestApp {
    let mut tracker = tracker_config(jira);
    change(&mut tracker);
    TestApp::spawn_with(|_| {}, move |config| config.tracker = Some(tracker)).await
}

fn dev() -> Actor {
    Actor {
        id: u("dev"),
        name: "Dev Eloper".into(),
        source: Source::Cli,
    }
}

async fn dobro(app: &TestApp, ticket: &str) -> Answer {
    let text = format!("dobro {ticket} https://wiki.example.com/{ticket} ship it");
    app.app.bot.handle(dev(), &text, None).await
}

/// The `tracker` of the `ReleaseRequested` an accepted answer recorded.
#[track_caller]
fn recorded(answer: &Answer) -> TicketInTracker {
    match answer {
        Answer::Accepted { events, .. } => match &events[0] {
            Event::ReleaseRequested { tracker, .. } => {
                tracker.clone().expect("the request records the tracker")
            }
            other => panic!("not a request: {other:?}"),
        },
        other => panic!("not accepted: {other:?}"),
    }
}

#[track_caller]
fn failures(answer: &Answer) -> Vec<CheckFailure> {
    match answer {
        Answer::Refused(Refusal::ChecksFailed { failures, .. }) => failures.clone(),
        other => panic!("not refused for its checks: {other:?}"),
    }
}

/// The data of the ledger's events of `event_type`, as stored.
async fn stored(app: &TestApp, event_type: &str) -> Vec<Value> {
    let events = app
        .app
        .store
        .read(&app.app.stream, Direction::Forwards, ReadFrom::Start, 1000)
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| e.event_type == event_type)
        .map(|e| {
            let decoded = envelope::decode(e).unwrap();
            serde_json::to_value(&decoded.event).unwrap()["data"].clone()
        })
        .collect()
}

#[tokio::test]
async fn a_ready_ticket_is_accepted_and_the_ledger_the_reply_and_slack_show_its_summary_and_status()
{
    let jira = FakeJira::start(Flavour::Cloud).await;
    jira.script(
        "PAY-1",
        [Reply::Found(IssueSpec::ready("Invoices round to the cent"))],
    );
    let app = app_with(&jira, |_| {}).await;

    let answer = dobro(&app, "PAY-1").await;
    assert_eq!(
        recorded(&answer),
        TicketInTracker::Checked {
            summary: "Invoices round to the cent".into(),
            status: "Ready for release".into(),
            checks: EVERY_CHECK.to_vec(),
        }
    );
    // One request, on Cloud's API, with the credentials and only the fields the checks read.
    let seen = jira.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/rest/api/3/issue/PAY-1");
    assert!(seen[0].authorized);
    assert_eq!(seen[0].fields.as_deref(), Some(FIELDS));
    assert_eq!(
        FIELDS,
        "summary,status,issuetype,fixVersions,assignee,labels"
    );

    let data = &stored(&app, "ReleaseRequested").await[0];
    assert_eq!(data["tracker"]["outcome"], "checked");
    assert_eq!(data["tracker"]["summary"], "Invoices round to the cent");
    assert_eq!(data["tracker"]["status"], "Ready for release");

    assert_snapshot!(Renderer::plain(None).answer(&answer), @"
    dev asks to release PAY-1 (billing).
    > ship it
    In the tracker: Invoices round to the cent (Ready for release)
    Release notes: https://wiki.example.com/PAY-1
    Waiting for approval by U0ALICE (needs an admin).
    ");

    // The release message in Slack.
    let posted = app
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == CHANNEL && text_of(p).contains("PAY-1"),
            support::fixtures::WAIT,
        )
        .await;
    assert_eq!(posted["blocks"][0]["block_id"], "release");
    let about = posted["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_snapshot!(about, @"
    *Release <https://tracker.example.com/browse/PAY-1|PAY-1>* requested by dev
    Services: billing
    In the tracker: Invoices round to the cent (Ready for release)
    Release notes: <https://wiki.example.com/PAY-1>
    > ship it
    ");

    // The timeline's story panel reads the request from the history API.
    app.followed_reaches_the_ledger().await;
    let history: Value = app
        .http
        .get(format!("{}/api/v1/history?ticket=PAY-1", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = &history["items"][0];
    assert_eq!(request["event_type"], "ReleaseRequested");
    assert_eq!(
        request["event"]["data"]["tracker"]["summary"],
        "Invoices round to the cent"
    );
}

#[tokio::test]
async fn a_ticket_not_ready_in_jira_is_refused_naming_every_failed_check() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    jira.script(
        "PAY-2",
        [Reply::Found(IssueSpec {
            status: "In Progress".into(),
            category: "indeterminate".into(),
            issue_type: "Epic".into(),
            fix_versions: vec![],
            assignee: None,
            labels: vec!["backend".into()],
            ..IssueSpec::ready("Not yet")
        })],
    );
    let app = app_with(&jira, |_| {}).await;

    let answer = dobro(&app, "PAY-2").await;
    assert_eq!(
        failures(&answer),
        vec![
            CheckFailure::StatusNotAllowed {
                status: "In Progress".into(),
                statuses: vec!["Ready for release".into()],
                status_categories: vec!["done".into()],
            },
            CheckFailure::NoFixVersion,
            CheckFailure::NoAssignee,
            CheckFailure::IssueTypeNotAllowed {
                issue_type: "Epic".into(),
                allowed: vec!["Story".into(), "Bug".into()],
            },
            CheckFailure::LabelMissing {
                labels: vec!["release".into()],
            },
        ]
    );
    let refused = stored(&app, "CommandRefused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0]["refusal"]["failures"].as_array().unwrap().len(),
        5
    );
    assert!(stored(&app, "ReleaseRequested").await.is_empty());

    // A done ticket in another status passes through its category.
    jira.script(
        "PAY-3",
        [Reply::Found(IssueSpec {
            status: "Closed".into(),
            category: "done".into(),
            ..IssueSpec::ready("Closed and shipped")
        })],
    );
    let answer = dobro(&app, "PAY-3").await;
    assert!(matches!(
        recorded(&answer),
        TicketInTracker::Checked { status, .. } if status == "Closed"
    ));
}

#[tokio::test]
async fn a_ticket_jira_does_not_have_is_refused_as_not_found() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    let app = app_with(&jira, |t| t.on_unavailable = OnUnavailable::Allow).await;
    jira.script("PAY-404", [Reply::NotFound]);

    let answer = dobro(&app, "PAY-404").await;
    assert_eq!(failures(&answer), vec![CheckFailure::TicketNotFound]);
}

#[tokio::test]
async fn a_slow_jira_refuses_after_the_timeout_when_config_says_refuse() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    jira.script(
        "PAY-5",
        [Reply::Slow(
            Duration::from_secs(4),
            Box::new(Reply::Found(IssueSpec::ready("Too late"))),
        )],
    );
    let app = app_with(&jira, |t| t.timeout = "1s".into()).await;

    let started = Instant::now();
    let answer = dobro(&app, "PAY-5").await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    match &failures(&answer)[..] {
        [CheckFailure::TrackerUnavailable { reason }] => {
            assert!(reason.contains("no answer within 1s"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_jira_lets_the_request_through_when_allowed_and_the_event_says_what_was_not_checked()
{
    let jira = FakeJira::start(Flavour::Cloud).await;
    jira.script(
        "PAY-6",
        [Reply::Slow(
            Duration::from_secs(4),
            Box::new(Reply::Found(IssueSpec::ready("Too late"))),
        )],
    );
    let app = app_with(&jira, |t| {
        t.timeout = "1s".into();
        t.on_unavailable = OnUnavailable::Allow;
    })
    .await;

    let answer = dobro(&app, "PAY-6").await;
    match recorded(&answer) {
        TicketInTracker::NotChecked {
            cause,
            reason,
            checks,
        } => {
            assert_eq!(cause, NotCheckedCause::Unavailable);
            assert!(reason.contains("no answer within 1s"), "{reason}");
            assert_eq!(checks, EVERY_CHECK.to_vec());
        }
        other => panic!("{other:?}"),
    }
    let data = &stored(&app, "ReleaseRequested").await[0];
    assert_eq!(data["tracker"]["outcome"], "not_checked");
    let reply = Renderer::plain(None).answer(&answer);
    assert!(
        reply.contains("Not checked in the tracker, because the tracker could not be asked"),
        "{reply}"
    );
}

#[tokio::test]
async fn refused_credentials_are_a_configuration_error_not_a_ticket_that_is_not_ready() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    jira.script("PAY-7", [Reply::Found(IssueSpec::ready("Fine"))]);
    jira.script("PAY-8", [Reply::Forbidden]);
    let app = app_with(&jira, |t| t.api_token = Some(Secret("revoked".into()))).await;

    let answer = dobro(&app, "PAY-7").await;
    match &failures(&answer)[..] {
        [CheckFailure::TrackerMisconfigured { reason }] => assert!(
            reason.starts_with("HTTP 401: You are not authenticated"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let reply = Renderer::plain(None).answer(&answer);
    assert!(
        reply.contains("configuration error, for the admins"),
        "{reply}"
    );
    assert!(!jira.seen()[0].authorized);
    // Counted apart from the tickets that are not ready.
    let metrics = dobrobot::metrics::METRICS.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dobrobot_tracker_lookups_total{outcome=\"misconfigured\"}")),
        "{metrics}"
    );

    let good = app_with(&jira, |t| t.on_unavailable = OnUnavailable::Allow).await;
    let answer = dobro(&good, "PAY-8").await;
    match recorded(&answer) {
        TicketInTracker::NotChecked { cause, reason, .. } => {
            assert_eq!(cause, NotCheckedCause::Misconfigured);
            assert!(reason.starts_with("HTTP 403"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_once_when_its_retry_after_fits_the_budget() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    jira.script(
        "PAY-9",
        [
            Reply::RateLimited { retry_after: 1 },
            Reply::Found(IssueSpec::ready("Worth the wait")),
        ],
    );
    jira.script("PAY-10", [Reply::RateLimited { retry_after: 30 }]);
    let app = app_with(&jira, |t| t.timeout = "3s".into()).await;

    let started = Instant::now();
    let answer = dobro(&app, "PAY-9").await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(matches!(recorded(&answer), TicketInTracker::Checked { .. }));
    assert_eq!(jira.requests_for("PAY-9"), 2);

    let started = Instant::now();
    let answer = dobro(&app, "PAY-10").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not wait"
    );
    match &failures(&answer)[..] {
        [CheckFailure::TrackerUnavailable { reason }] => {
            assert!(reason.contains("Retry-After 30s"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(jira.requests_for("PAY-10"), 1);

    // Any Retry-After a proxy may send is only a wait too long to take.
    jira.script(
        "PAY-11",
        [Reply::RateLimited {
            retry_after: u64::MAX,
        }],
    );
    let answer = dobro(&app, "PAY-11").await;
    assert!(
        matches!(
            &failures(&answer)[..],
            [CheckFailure::TrackerUnavailable { .. }]
        ),
        "{answer:?}"
    );

    // Limited again after the wait: one retry only.
    jira.script(
        "PAY-14",
        [
            Reply::RateLimited { retry_after: 1 },
            Reply::RateLimited { retry_after: 1 },
        ],
    );
    match &failures(&dobro(&app, "PAY-14").await)[..] {
        [CheckFailure::TrackerUnavailable { reason }] => {
            assert_eq!(reason, "rate limited again after waiting once")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(jira.requests_for("PAY-14"), 2);
}

#[tokio::test]
async fn answers_are_reused_within_the_cache_time_and_asked_again_after() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    let not_ready = IssueSpec {
        fix_versions: vec![],
        ..IssueSpec::ready("No version yet")
    };
    jira.script("PAY-11", [Reply::Found(not_ready)]);
    jira.script("PAY-12", [Reply::Unavailable]);
    let app = app_with(&jira, |t| t.cache = "1s".into()).await;

    assert_eq!(
        failures(&dobro(&app, "PAY-11").await),
        vec![CheckFailure::NoFixVersion]
    );
    assert_eq!(
        failures(&dobro(&app, "PAY-11").await),
        vec![CheckFailure::NoFixVersion]
    );
    assert_eq!(
        jira.requests_for("PAY-11"),
        1,
        "the second dobro used the cache"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Fixed in Jira meanwhile: the next dobro sees it.
    jira.script("PAY-11", [Reply::Found(IssueSpec::ready("Versioned"))]);
    assert!(matches!(
        recorded(&dobro(&app, "PAY-11").await),
        TicketInTracker::Checked { summary, .. } if summary == "Versioned"
    ));
    assert_eq!(jira.requests_for("PAY-11"), 2);

    // A failure is not kept: the next dobro asks again.
    for _ in 0..2 {
        match &failures(&dobro(&app, "PAY-12").await)[..] {
            [CheckFailure::TrackerUnavailable { reason }] => {
                assert!(reason.starts_with("HTTP 503"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(jira.requests_for("PAY-12"), 2);
}

#[tokio::test]
async fn server_and_data_center_take_a_personal_access_token_on_api_2() {
    let jira = FakeJira::start(Flavour::Server).await;
    jira.script("PAY-13", [Reply::Found(IssueSpec::ready("On premises"))]);
    let app = app_with(&jira, |t| {
        t.deployment = JiraDeployment::Server;
        t.email = None;
        t.api_token = None;
        t.token = Some(Secret(PAT.into()));
    })
    .await;

    let answer = dobro(&app, "PAY-13").await;
    assert!(matches!(recorded(&answer), TicketInTracker::Checked { .. }));
    let seen = jira.seen();
    assert_eq!(seen[0].path, "/rest/api/2/issue/PAY-13");
    assert!(seen[0].authorized);
}

#[tokio::test]
async fn a_tracker_without_its_credentials_stops_the_start() {
    let jira = FakeJira::start(Flavour::Cloud).await;
    let dir = tempfile::tempdir().unwrap();
    let config = |tracker: TrackerConfig| Config {
        store: format!("sqlite://{}", dir.path().join("ledger.db").display()),
        models: Some(dir.path().join("ledger.models").display().to_string()),
        tracker: Some(tracker),
        ..Config::default()
    };
    let cloud_without_token = TrackerConfig {
        api_token: None,
        ..tracker_config(&jira)
    };
    let server_without_token = TrackerConfig {
        deployment: JiraDeployment::Server,
        ..tracker_config(&jira)
    };
    let no_url = TrackerConfig {
        base_url: String::new(),
        ..tracker_config(&jira)
    };
    for (tracker, says) in [
        (cloud_without_token, "JIRA_EMAIL and JIRA_API_TOKEN"),
        (server_without_token, "JIRA_TOKEN"),
        (no_url, "base_url"),
    ] {
        match App::build(config(tracker), Settings::chat()).await {
            Err(AppError::Config(error @ ConfigError::Tracker(_))) => {
                assert!(error.to_string().contains(says), "{error}")
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("the app started without what the tracker needs"),
        }
    }
    assert!(jira.seen().is_empty());
    // Nothing was opened before the check.
    assert!(!dir.path().join("ledger.db").exists());
}
