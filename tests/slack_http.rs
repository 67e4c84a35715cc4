//! The Slack front over the Events API, end to end: the real router on 127.0.0.1:0, a real
//! SQLite ledger in a temp dir, and the fake Slack Web API (`fake-slack`) on the other side.
//! Requests are Slack's documented payloads (an `app_mention` inside `event_callback`, a
//! `message.im`, a `block_actions` form `payload=`, a slash-command form), signed with a test
//! secret the way Slack signs them.
//!
//! The tests assert what the ledger recorded and what Slack would show: the release's one
//! message (posted, then `chat.update`d), the replies in its thread, the notices and the
//! ephemeral refusals.

mod support;

use std::time::Duration;

use dobrobot::answer::ReplyKind;
use dobrobot::app::{App, Settings};
use dobrobot::envelope::{Actor, Source};
use dobrobot::render::Renderer;
use esdb_double::Double;
use fake_slack::Outcome;
use insta::assert_snapshot;
use serde_json::{Value, json};

use support::app::TestApp;
use support::fixtures::{WAIT, role, u, wait_until};
use support::slack::{
    CHANNEL, HELD_BY_A_LOCK, SECRET, app_mention, blocks_text, direct_message, pretty, sign,
    slash_command, text_of,
};

/// The request, as bob types it.
const REQUEST: &str = "dobro #PAY-1 <https://wiki.example.com/pay-1> fix rounding in invoices";

async fn request_release(app: &TestApp) -> String {
    let response = app
        .event(&app_mention(
            "Ev01REQUEST",
            "U0BOB",
            "1764062400.000100",
            REQUEST,
        ))
        .await;
    assert_eq!(response.status(), 200);
    let posted = app
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == CHANNEL && p.get("thread_ts").is_none(),
            WAIT,
        )
        .await;
    let message = app
        .slack
        .messages(CHANNEL)
        .into_iter()
        .find(|m| m["text"] == posted["text"])
        .unwrap();
    message["ts"].as_str().unwrap().to_string()
}

// ---- the tests ----

#[tokio::test]
async fn the_seed_flow_with_buttons_one_message_and_its_thread() {
    let app = TestApp::spawn().await;

    // bob asks in the release channel.
    let ts = request_release(&app).await;
    let posted = &app.release_posts()[0];
    assert_snapshot!(text_of(posted), @"Release <https://tracker.example.com/browse/PAY-1|PAY-1> by <@U0BOB>: :hourglass_flowing_sand: Waiting for approval · waiting for an admin");
    assert_snapshot!(pretty(&posted["blocks"]), @r#"
    [
      {
        "block_id": "release",
        "text": {
          "text": "*Release <https://tracker.example.com/browse/PAY-1|PAY-1>* requested by <@U0BOB>\nServices: billing\nRelease notes: <https://wiki.example.com/pay-1>\n> fix rounding in invoices",
          "type": "mrkdwn"
        },
        "type": "section"
      },
      {
        "block_id": "status",
        "elements": [
          {
            "text": ":hourglass_flowing_sand: Waiting for approval · waiting for an admin",
            "type": "mrkdwn"
          }
        ],
        "type": "context"
      },
      {
        "block_id": "next",
        "elements": [
          {
            "action_id": "accept",
            "style": "primary",
            "text": {
              "text": "Accept",
              "type": "plain_text"
            },
            "type": "button",
            "value": "accept PAY-1"
          },
          {
            "action_id": "reject",
            "style": "danger",
            "text": {
              "text": "Reject",
              "type": "plain_text"
            },
            "type": "button",
            "value": "reject PAY-1"
          },
          {
            "action_id": "here",
            "text": {
              "text": "I'm here",
              "type": "plain_text"
            },
            "type": "button",
            "value": "here PAY-1"
          }
        ],
        "type": "actions"
      }
    ]
    "#);
    // The approvers are notified by their user group, in the release's thread.
    let notice = app.wait_thread_reply(&ts, "waits for your approval").await;
    assert_snapshot!(notice, @"<!subteam^S0APPROVERS> Release <https://tracker.example.com/browse/PAY-1|PAY-1> by <@U0BOB> waits for your approval: press *Accept* or *Reject*.");
    // bob's mention gets its answer in its own thread.
    let answer = app
        .wait_thread_reply("1764062400.000100", "asks to release")
        .await;
    assert_snapshot!(answer, @"
    <@U0BOB> asks to release <https://tracker.example.com/browse/PAY-1|PAY-1> (billing).
    > fix rounding in invoices
    Ticket: https://tracker.example.com/browse/PAY-1
    Release notes: https://wiki.example.com/pay-1
    Waiting for approval by <@U0ALICE> (needs an admin).
    ");

    // alice, an approver through S0APPROVERS, presses Accept.
    app.press("U0ALICE", &ts, "accept", "accept PAY-1").await;
    let accepted = app.wait_update(&ts, "Accepted by").await;
    assert_snapshot!(pretty(&accepted["blocks"]), @r#"
    [
      {
        "block_id": "release",
        "text": {
          "text": "*Release <https://tracker.example.com/browse/PAY-1|PAY-1>* requested by <@U0BOB>\nServices: billing\nRelease notes: <https://wiki.example.com/pay-1>\n> fix rounding in invoices",
          "type": "mrkdwn"
        },
        "type": "section"
      },
      {
        "block_id": "status",
        "elements": [
          {
            "text": ":white_check_mark: Accepted by <@U0ALICE> · waiting for an admin",
            "type": "mrkdwn"
          }
        ],
        "type": "context"
      },
      {
        "block_id": "next",
        "elements": [
          {
            "action_id": "here",
            "text": {
              "text": "I'm here",
              "type": "plain_text"
            },
            "type": "button",
            "value": "here PAY-1"
          }
        ],
        "type": "actions"
      }
    ]
    "#);
    let step = app.wait_thread_reply(&ts, "accepted").await;
    assert_snapshot!(step, @"<@U0BOB> <@U0ALICE> accepted <https://tracker.example.com/browse/PAY-1|PAY-1>. Next: an admin (<@U0OLEG>) joins with `here PAY-1`.");

    // oleg, an admin through S0ADMINS, presses "I'm here".
    app.press("U0OLEG", &ts, "here", "here PAY-1").await;
    let joined = app.wait_update(&ts, "ready to start").await;
    assert_snapshot!(blocks_text(&joined), @"
    *Release <https://tracker.example.com/browse/PAY-1|PAY-1>* requested by <@U0BOB>
    Services: billing
    Release notes: <https://wiki.example.com/pay-1>
    > fix rounding in invoices
    :white_check_mark: Accepted by <@U0ALICE> · admin: <@U0OLEG> · ready to start
    Start
    ");
    let found = app.wait_thread_reply(&ts, "Admin found").await;
    assert_snapshot!(found, @"<@U0BOB> Admin found: <@U0OLEG> joins <https://tracker.example.com/browse/PAY-1|PAY-1>. Next: `dep start PAY-1`.");

    // bob starts it from a DM with the bot.
    let response = app
        .event(&direct_message(
            "Ev03START",
            "U0BOB",
            "1764062700.000300",
            "dep start PAY-1",
        ))
        .await;
    assert_eq!(response.status(), 200);
    let deploying = app.wait_update(&ts, "Deploying since").await;
    assert_snapshot!(pretty(&deploying["blocks"][2]), @r#"
    {
      "block_id": "next",
      "elements": [
        {
          "action_id": "finish",
          "style": "primary",
          "text": {
            "text": "Finish",
            "type": "plain_text"
          },
          "type": "button",
          "value": "dep finish PAY-1"
        },
        {
          "action_id": "rollback",
          "style": "danger",
          "text": {
            "text": "Rollback",
            "type": "plain_text"
          },
          "type": "button",
          "value": "dep rollback PAY-1"
        }
      ],
      "type": "actions"
    }
    "#);
    let started = app.wait_thread_reply(&ts, "started by").await;
    assert_snapshot!(started, @"Deployment of <https://tracker.example.com/browse/PAY-1|PAY-1> started by <@U0BOB> on billing. When done: `dep finish PAY-1` or `dep rollback PAY-1 &lt;reason&gt;`.");
    let in_dm = app.wait_dm("U0BOB").await;
    assert_eq!(text_of(&in_dm), started);

    // ... and finishes it with the slash command.
    app.slash("U0BOB", "dep finish PAY-1", "13345224609.738474920.finish")
        .await;
    let finished = app.wait_update(&ts, "Finished by").await;
    assert_snapshot!(blocks_text(&finished), @"
    *Release <https://tracker.example.com/browse/PAY-1|PAY-1>* requested by <@U0BOB>
    Services: billing
    Release notes: <https://wiki.example.com/pay-1>
    > fix rounding in invoices
    :checkered_flag: Finished by <@U0BOB>
    ");
    assert_eq!(
        finished["blocks"].as_array().unwrap().len(),
        2,
        "no buttons once finished"
    );
    app.wait_ephemeral("U0BOB", "finished").await;
    app.wait_thread_reply(&ts, "finished by").await;

    // One message for the release, updated in place; every step in its thread.
    assert_eq!(app.release_posts().len(), 1);
    assert_snapshot!(app.thread(&ts).join("\n---\n"), @"
    <!subteam^S0APPROVERS> Release <https://tracker.example.com/browse/PAY-1|PAY-1> by <@U0BOB> waits for your approval: press *Accept* or *Reject*.
    ---
    <@U0BOB> <@U0ALICE> accepted <https://tracker.example.com/browse/PAY-1|PAY-1>. Next: an admin (<@U0OLEG>) joins with `here PAY-1`.
    ---
    <!subteam^S0ADMINS> Release <https://tracker.example.com/browse/PAY-1|PAY-1> is accepted and needs an admin: press *I'm here*.
    ---
    <@U0BOB> Admin found: <@U0OLEG> joins <https://tracker.example.com/browse/PAY-1|PAY-1>. Next: `dep start PAY-1`.
    ---
    Deployment of <https://tracker.example.com/browse/PAY-1|PAY-1> started by <@U0BOB> on billing. When done: `dep finish PAY-1` or `dep rollback PAY-1 &lt;reason&gt;`.
    ---
    Deployment of <https://tracker.example.com/browse/PAY-1|PAY-1> finished by <@U0BOB>.
    ");
    assert_snapshot!(app.ledger_events().await.join("\n"), @"
    ReleaseRequested by U0BOB (bob)
    ReleaseApproved by U0ALICE (alice)
    AdminJoined by U0OLEG (oleg)
    DeploymentStarted by U0BOB (bob)
    DeploymentFinished by U0BOB (bob)
    ");
}

#[tokio::test]
async fn a_redelivered_event_records_nothing_new_and_posts_nothing_new() {
    let app = TestApp::spawn().await;
    let mention = app_mention("Ev01REQUEST", "U0BOB", "1764062400.000100", REQUEST);
    request_release(&app).await;
    app.wait_thread_reply("1764062400.000100", "asks to release")
        .await;

    for retry in 1..=2 {
        let response = app
            .post_signed(
                "/slack/events",
                "application/json",
                mention.to_string(),
                0,
                Some(retry),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    // The acknowledgement comes first; give the spawned work time to run.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(app.ledger_events().await.len(), 1);
    assert_eq!(app.release_posts().len(), 1);
    let answers = app.thread("1764062400.000100");
    assert_eq!(answers.len(), 1, "{answers:?}");
}

/// Two events without an `event_id` are two messages, not a redelivery of one: each is
/// recorded (under the id of its message), and a redelivery of either still records nothing.
#[tokio::test]
async fn events_without_an_id_are_recorded_once_each() {
    let app = TestApp::spawn().await;
    let first = app_mention("", "U0BOB", "1764062400.000100", REQUEST);
    let second = app_mention(
        "",
        "U0CAROL",
        "1764062401.000200",
        "dobro #PAY-2 https://wiki/y other fix",
    );
    for event in [&first, &second, &first] {
        assert_eq!(app.event(event).await.status(), 200);
    }
    wait_until(|| async { app.ledger_events().await.len() == 2 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_snapshot!(app.ledger_events().await.join("\n"), @"
    ReleaseRequested by U0BOB (bob)
    ReleaseRequested by U0CAROL (carol)
    ");
}

#[tokio::test]
async fn a_bad_signature_or_a_stale_timestamp_gets_401_and_records_nothing() {
    let app = TestApp::spawn().await;
    let body = app_mention("Ev01REQUEST", "U0BOB", "1764062400.000100", REQUEST).to_string();

    let forged = app
        .http
        .post(format!("{}/slack/events", app.base))
        .header(
            "x-slack-request-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("x-slack-signature", "v0=0123456789abcdef")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let stale = app
        .post_signed(
            "/slack/events",
            "application/json",
            body.clone(),
            6 * 60,
            None,
        )
        .await;
    assert_eq!(stale.status(), 401);

    let unsigned = app
        .http
        .post(format!("{}/slack/commands", app.base))
        .body(slash_command("U0BOB", REQUEST, "1.2.3"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let tampered_secret = sign(
        "another secret",
        &chrono::Utc::now().timestamp().to_string(),
        &body,
    );
    let other = app
        .http
        .post(format!("{}/slack/interactivity", app.base))
        .header(
            "x-slack-request-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("x-slack-signature", tampered_secret)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.ledger_events().await.is_empty());
    assert!(app.slack.calls_to("chat.postMessage").is_empty());
}

#[tokio::test]
async fn url_verification_is_answered_with_its_challenge() {
    let app = TestApp::spawn().await;
    let challenge = json!({
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification"
    });
    let response = app.event(&challenge).await;
    assert_eq!(response.status(), 200);
    assert_snapshot!(response.text().await.unwrap(), @r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#);
}

#[tokio::test]
async fn health_answers_without_a_signature() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_snapshot!(response.text().await.unwrap(), @r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn a_person_who_may_not_press_a_button_is_told_why_and_the_message_stays() {
    let app = TestApp::spawn().await;
    let ts = request_release(&app).await;

    // carol is neither an approver nor an admin.
    app.press("U0CAROL", &ts, "accept", "accept PAY-1").await;
    let refusal = app.wait_ephemeral("U0CAROL", "").await;
    assert_snapshot!(refusal, @"Only an approver can do that.");
    // bob requested it, and is no admin.
    app.press("U0BOB", &ts, "here", "here PAY-1").await;
    let refusal = app.wait_ephemeral("U0BOB", "").await;
    assert_snapshot!(refusal, @"Only an admin can do that.");

    assert!(app.slack.calls_to("chat.update").is_empty());
    assert_snapshot!(app.ledger_events().await.join("\n"), @"
    ReleaseRequested by U0BOB (bob)
    CommandRefused by U0CAROL (carol)
    CommandRefused by U0BOB (bob)
    ");
}

#[tokio::test]
async fn roles_come_from_user_groups_and_four_eyes_holds_for_their_members() {
    // bob is an approver too, through the S0APPROVERS group.
    let app = TestApp::spawn_with(
        |slack| slack.set_group("S0APPROVERS", &["U0ALICE", "U0BOB"]),
        |_| {},
    )
    .await;
    let ts = request_release(&app).await;

    app.press("U0BOB", &ts, "accept", "accept PAY-1").await;
    let refusal = app.wait_ephemeral("U0BOB", "").await;
    assert_snapshot!(refusal, @"You requested <https://tracker.example.com/browse/PAY-1|PAY-1>, so another approver has to accept it (four eyes).");
    assert!(app.slack.calls_to("chat.update").is_empty());

    app.press("U0ALICE", &ts, "accept", "accept PAY-1").await;
    app.wait_update(&ts, "Accepted by <@U0ALICE>").await;
}

/// A change of a user group's members is a change of the rules: recorded by the directory's
/// refresh, and deciding from then on.
#[tokio::test]
async fn a_user_group_losing_a_member_is_recorded_and_decides_from_then_on() {
    let app = TestApp::spawn_with(
        |slack| slack.set_group("S0APPROVERS", &["U0ALICE", "U0CAROL"]),
        |_| {},
    )
    .await;
    let policies = || async {
        let raw = app
            .app
            .store
            .read(
                &app.app.stream,
                dobrobot::store::Direction::Forwards,
                dobrobot::store::ReadFrom::Start,
                1000,
            )
            .await
            .unwrap();
        raw.iter()
            .map(|e| dobrobot::envelope::decode(e).unwrap())
            .filter_map(|r| match r.event {
                dobrobot::domain::Event::PolicyChanged { changes, cause, .. } => {
                    Some((cause, changes, r.metadata.actor.source))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let recorded = policies().await;
    let (cause, changes, source) = recorded.last().expect("the members were recorded");
    assert_eq!(*cause, dobrobot::domain::PolicyCause::Directory);
    assert_eq!(*source, Source::System);
    assert!(
        changes.contains(&"members of user group S0APPROVERS: added U0ALICE, U0CAROL".to_string()),
        "{changes:?}"
    );

    // carol leaves the group, oleg (an admin) joins; the next refresh records it.
    app.slack.set_group("S0APPROVERS", &["U0ALICE", "U0OLEG"]);
    app.app.slack.as_ref().unwrap().refresh_roles().await;
    let after = policies().await;
    assert_eq!(after.len(), recorded.len() + 1, "{after:?}");
    let (cause, changes, _) = after.last().unwrap();
    assert_eq!(*cause, dobrobot::domain::PolicyCause::Directory);
    assert_eq!(
        changes,
        &[
            "approvers: added U0OLEG; removed U0CAROL",
            "members of user group S0APPROVERS: added U0OLEG; removed U0CAROL",
        ]
    );
    // Nothing changed since: a refresh records nothing.
    app.app.slack.as_ref().unwrap().refresh_roles().await;
    assert_eq!(policies().await.len(), after.len());

    let ts = request_release(&app).await;
    app.press("U0CAROL", &ts, "accept", "accept PAY-1").await;
    let refusal = app.wait_ephemeral("U0CAROL", "").await;
    assert_eq!(refusal, "Only an approver can do that.");
    app.press("U0OLEG", &ts, "accept", "accept PAY-1").await;
    app.wait_update(&ts, "Accepted by <@U0OLEG>").await;
}

#[tokio::test]
async fn a_rate_limited_post_is_retried_after_retry_after() {
    let app = TestApp::spawn().await;
    app.slack.rate_limit("chat.postMessage", 2, 1);
    let started = std::time::Instant::now();
    request_release(&app).await;
    // The release message and the answer in the mention's thread are posted at the same time;
    // each waits out its own `Retry-After`.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let limited = app
        .slack
        .calls()
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.outcome == Outcome::RateLimited)
        .count();
    assert_eq!(limited, 2);
    assert_eq!(app.release_posts().len(), 1);
}

#[tokio::test]
async fn when_the_ledger_is_unavailable_the_person_is_told_nothing_was_recorded() {
    // The ledger on the EventStoreDB double, which can answer every call as a node that is not
    // ready does.
    let double = Double::start().await;
    let app = TestApp::spawn_with(|_| {}, |config| config.store = double.url()).await;
    double.faults().set_unavailable(true);
    let response = app
        .event(&app_mention(
            "Ev01REQUEST",
            "U0BOB",
            "1764062400.000100",
            REQUEST,
        ))
        .await;
    assert_eq!(response.status(), 200);
    let told = app.wait_ephemeral("U0BOB", "not recorded").await;
    assert!(
        told.starts_with("Your command was not recorded: "),
        "{told}"
    );
    assert!(told.ends_with(". Please try again."), "{told}");
    double.faults().set_unavailable(false);
    assert!(app.ledger_events().await.is_empty());
    assert!(app.release_posts().is_empty());
}

#[tokio::test]
async fn queue_shows_each_release_its_place_and_what_it_waits_for() {
    let app = TestApp::spawn().await;
    request_release(&app).await;
    app.slash("U0CAROL", "queue", "1.2.queue").await;
    let queue = app.wait_ephemeral("U0CAROL", "queue").await;
    assert_snapshot!(queue, @"
    Release queue:
    • <https://tracker.example.com/browse/PAY-1|PAY-1> (billing) by <@U0BOB> — #1 in line, requested, waiting for approval and an admin
    ");
}

#[tokio::test]
async fn with_notify_dm_approvers_and_admins_get_direct_messages() {
    let app = TestApp::spawn_with(
        |slack| slack.set_group("S0APPROVERS", &["U0ALICE", "U0CAROL"]),
        |config| config.slack.notify = dobrobot::config::Notify::Dm,
    )
    .await;
    let ts = request_release(&app).await;
    let mut texts = Vec::new();
    for approver in ["U0ALICE", "U0CAROL"] {
        let dm = app.wait_dm(approver).await;
        texts.push(text_of(&dm).to_string());
    }
    assert_eq!(texts[0], texts[1]);
    assert_snapshot!(texts[0], @"Release <https://tracker.example.com/browse/PAY-1|PAY-1> by <@U0BOB> waits for your approval: press *Accept* or *Reject*. See <#C0RELEASES>.");
    app.press("U0ALICE", &ts, "accept", "accept PAY-1").await;
    let to_admin = app.wait_dm("U0OLEG").await;
    assert_snapshot!(text_of(&to_admin), @"Release <https://tracker.example.com/browse/PAY-1|PAY-1> is accepted and needs an admin: press *I'm here*. See <#C0RELEASES>.");
    let to_requester = app.wait_dm("U0BOB").await;
    assert_snapshot!(text_of(&to_requester), @"<@U0ALICE> accepted your release <https://tracker.example.com/browse/PAY-1|PAY-1>. See <#C0RELEASES>.");
    // No group mentions in the thread: the step's reply only.
    assert_snapshot!(app.thread(&ts).join("\n---\n"), @"<@U0ALICE> accepted <https://tracker.example.com/browse/PAY-1|PAY-1>. Next: an admin (<@U0OLEG>) joins with `here PAY-1`.");
}

/// `dobrobot serve` with no Slack settings at all: the ledger and `/health`, nothing else; with
/// a signing secret, Slack's endpoints too, refusing what is not signed.
#[tokio::test]
async fn serve_runs_without_slack_and_mounts_the_endpoints_with_a_signing_secret() {
    for secret in [None, Some(SECRET)] {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("dobrobot"));
        command
            .arg("serve")
            .current_dir(dir.path())
            .env(
                "DOBROBOT_STORE",
                format!("sqlite://{}", dir.path().join("l.db").display()),
            )
            .env("DOBROBOT_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("DOBROBOT_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for name in [
            "SLACK_BOT_TOKEN",
            "SLACK_APP_TOKEN",
            "SLACK_SIGNING_SECRET",
            "SLACK_API_URL",
        ] {
            command.env_remove(name);
        }
        if let Some(secret) = secret {
            command.env("SLACK_SIGNING_SECRET", secret);
        }
        let mut child = command.spawn().unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut health = None;
        for _ in 0..100 {
            if let Ok(response) = http.get(format!("{base}/health")).send().await {
                health = Some(response.status());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let events = http
            .post(format!("{base}/slack/events"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        child.kill().unwrap();
        let _ = child.wait();
        assert_eq!(health, Some(reqwest::StatusCode::OK));
        let expected = if secret.is_some() { 401 } else { 404 };
        assert_eq!(events, expected, "signing secret: {secret:?}");
    }
}

#[test]
fn the_manifest_asks_for_what_the_bot_uses() {
    let manifest = include_str!("../slack-app-manifest.yml");
    for needed in [
        "- app_mentions:read",
        "- chat:write",
        "- im:history",
        "- im:write",
        "- users:read",
        "- usergroups:read",
        "- commands",
        "- app_mention",
        "- message.im",
        "command: /dobro",
        "socket_mode_enabled: true",
        "- app_home_opened",
        "home_tab_enabled: true",
        "callback_id: request_release",
    ] {
        assert!(manifest.contains(needed), "the manifest lacks `{needed}`");
    }
    assert!(manifest.contains("interactivity:\n    is_enabled: true"));
}

#[tokio::test]
async fn two_quick_presses_leave_the_message_at_the_newest_step() {
    let app = TestApp::spawn().await;
    let ts = request_release(&app).await;
    tokio::join!(
        app.press("U0ALICE", &ts, "accept", "accept PAY-1"),
        app.press("U0OLEG", &ts, "here", "here PAY-1"),
    );
    app.wait_thread_reply(&ts, "accepted").await;
    app.wait_thread_reply(&ts, "Admin found").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let message = app.slack.message(CHANNEL, &ts).unwrap();
    assert!(
        blocks_text(&message).contains("admin: <@U0OLEG> · ready to start"),
        "{}",
        blocks_text(&message)
    );
}

/// The waitlist: a `dep start` refused because another deployment holds the lock puts the
/// person in line, and when that deployment finishes they get a direct message.
#[tokio::test]
async fn a_start_refused_for_a_lock_is_told_by_dm_when_the_lock_frees() {
    let app = TestApp::spawn().await;
    app.run_steps(&HELD_BY_A_LOCK).await;
    let refused = app.ledger_events().await;
    assert!(
        refused[5].starts_with("CommandRefused by U0CAROL"),
        "{refused:?}"
    );
    let dm_to_carol = |p: &Value| {
        p["channel"]
            .as_str()
            .is_some_and(|c| c.starts_with('D') && c.contains("U0CAROL"))
    };
    assert!(
        !app.slack
            .calls_to("chat.postMessage")
            .iter()
            .any(dm_to_carol),
        "nobody is told before the lock frees"
    );

    app.slash("U0BOB", "dep finish PAY-1", "trigger-finish")
        .await;
    let told = app
        .slack
        .wait_for("chat.postMessage", dm_to_carol, WAIT)
        .await;
    let text = text_of(&told);
    assert!(text.contains("PAY-1") && text.contains("PAY-2"), "{text}");
    assert_eq!(
        app.slack
            .calls_to("chat.postMessage")
            .iter()
            .filter(|p| dm_to_carol(p))
            .count(),
        1,
        "told once"
    );
}

/// A step recorded without Slack (`dobrobot chat` on the same store: another process, with its
/// own writer) updates the release's message and replies in its thread like a step in Slack;
/// a step in Slack is still shown once.
#[tokio::test]
async fn a_step_recorded_outside_slack_updates_the_message_and_its_thread() {
    let app = TestApp::spawn().await;
    let ts = request_release(&app).await;
    app.wait_thread_reply(&ts, "waits for your approval").await;

    // `dobrobot chat` in another process: its own app, on the same store. Without Slack it
    // cannot expand user groups, so its config names alice herself.
    let mut config = app.config.clone();
    config.roles.approvers.push(role("U0ALICE"));
    let cli = App::build(config, Settings::chat()).await.unwrap();
    let alice = Actor {
        id: u("U0ALICE"),
        name: "alice".into(),
        source: Source::Cli,
    };
    let answer = cli.bot.handle(alice, "accept PAY-1", None).await;
    assert_eq!(
        answer.kind(),
        ReplyKind::Done,
        "{}",
        Renderer::plain(None).answer(&answer)
    );

    let accepted = app.wait_update(&ts, "Accepted by <@U0ALICE>").await;
    assert!(
        blocks_text(&accepted)
            .contains(":white_check_mark: Accepted by <@U0ALICE> · waiting for an admin"),
        "{}",
        blocks_text(&accepted)
    );
    app.wait_thread_reply(&ts, "needs an admin").await;
    let step = app.wait_thread_reply(&ts, "<@U0ALICE> accepted").await;
    assert_snapshot!(step, @"<@U0BOB> <@U0ALICE> accepted <https://tracker.example.com/browse/PAY-1|PAY-1>. Next: an admin (<@U0OLEG>) joins with `here PAY-1`.");

    // Every step is shown once, whoever recorded it.
    app.press("U0OLEG", &ts, "here", "here PAY-1").await;
    app.wait_thread_reply(&ts, "Admin found").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let thread = app.thread(&ts);
    assert_eq!(
        thread.iter().filter(|t| t.contains("Admin found")).count(),
        1,
        "{thread:#?}"
    );
    assert_eq!(
        thread
            .iter()
            .filter(|t| t.contains("<@U0ALICE> accepted"))
            .count(),
        1,
        "{thread:#?}"
    );
}
