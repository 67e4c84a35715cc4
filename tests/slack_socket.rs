//! The Slack front end to end through Socket Mode: the real `Bot` on a real SQLite file in a
//! temp dir, the real `SlackFront`, the real Socket Mode listener (slack-morphism over a real
//! websocket), and a fake Slack on 127.0.0.1 (`tests/fake-slack`) that hands out the websocket
//! through `apps.connections.open`, pushes envelopes in the shapes Slack's Socket Mode
//! documentation gives, and records the acknowledgements and the Web API calls.
//!
//! Each test asserts the three things Slack and a person would see: the envelope acknowledged,
//! the ledger's events, and the messages Slack received.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use dobrobot::app::{App, AppError};
use dobrobot::config::Config;
use dobrobot::domain::{Event, Refusal, Role};
use dobrobot::envelope::{self, Recorded, Source};
use dobrobot::slack::SlackError;
use dobrobot::store::{Direction, ReadFrom};
use fake_slack::envelope as socket_envelope;
use fake_slack::{APP_ID, BOT_USER_ID, FakeSlack, TEAM_ID};
use support::app::{TestApp, settings, slack_config};
use support::fixtures::{role, wait_until};
use support::slack::{app_mention, block_actions, slash_command_fields};

mod support;

const RELEASES: &str = "C0RELEASES";
const WAIT: Duration = Duration::from_secs(10);

/// The bot, its front and Socket Mode, on their own ledger file, against their own fake Slack.
struct Harness {
    slack: Arc<FakeSlack>,
    app: Option<TestApp>,
}

/// The shared Slack config, over Socket Mode: no signing secret, no tracker, and alice and oleg
/// named by their ids.
fn config(slack: &FakeSlack, dir: &TempDir) -> Config {
    let mut config = slack_config(slack, dir);
    config.tracker_url = None;
    config.roles.approvers = vec![role("U0ALICE")];
    config.roles.admins = vec![role("U0OLEG")];
    config.slack.signing_secret = None;
    config.slack.app_token = Some(fake_slack::APP_TOKEN.into());
    config
}

impl Harness {
    async fn start() -> Harness {
        let slack = Arc::new(FakeSlack::start().await);
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = config(&slack, &dir);
        let app = TestApp::build(slack.clone(), Arc::new(dir), config, settings()).await;
        slack.socket_connected(WAIT).await;
        Harness {
            slack,
            app: Some(app),
        }
    }

    /// The ledger as commands recorded it, oldest first: the policy the process recorded when
    /// it started (`PolicyChanged`, by the system) is left out.
    async fn ledger(&self) -> Vec<Recorded> {
        let app = &self.app.as_ref().expect("running").app;
        let raw = app
            .store
            .read(
                &app.stream,
                Direction::Forwards,
                ReadFrom::Revision(0),
                10_000,
            )
            .await
            .expect("read the ledger");
        raw.iter()
            .map(|event| envelope::decode(event).expect("a recorded event decodes"))
            .filter(|recorded| !matches!(recorded.event, Event::PolicyChanged { .. }))
            .collect()
    }

    /// The ledger's event types, oldest first.
    async fn event_types(&self) -> Vec<&'static str> {
        self.ledger()
            .await
            .iter()
            .map(|recorded| recorded.event.type_name())
            .collect()
    }

    /// Waits until the ledger holds `count` events, and returns their types.
    async fn wait_for_events(&self, count: usize) -> Vec<&'static str> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let types = self.event_types().await;
            if types.len() >= count {
                return types;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the ledger holds {types:?}, expected {count} events");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Pushes an envelope and waits for its acknowledgement.
    async fn push(&self, envelope: Value) -> Value {
        let id = envelope["envelope_id"]
            .as_str()
            .expect("an envelope has an id")
            .to_string();
        self.slack.socket_send(envelope);
        self.slack.wait_for_ack(&id, WAIT).await
    }
}

/// A `block_actions` payload for pressing `button` (an element of a message the bot posted).
fn press(user: &str, message: &Value, button: &Value) -> Value {
    let text = |v: &Value| v.as_str().expect("a string").to_string();
    block_actions(
        user,
        &text(&message["ts"]),
        &text(&button["action_id"]),
        &text(&button["value"]),
    )
}

/// The button labelled `label` in a message's blocks, with its block's id added as `block_id`
/// (where a `block_actions` payload names it).
fn button(message: &Value, label: &str) -> Value {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|block| {
            let elements = block["elements"].as_array().into_iter().flatten();
            elements.map(move |element| (block["block_id"].clone(), element))
        })
        .find(|(_, element)| element["type"] == "button" && element["text"]["text"] == label)
        .map(|(block_id, element)| {
            let mut button = element.clone();
            button["block_id"] = block_id;
            button
        })
        .unwrap_or_else(|| panic!("no `{label}` button in {message:#}"))
}

/// The release's message in the release channel (not a thread reply).
fn release_message(slack: &FakeSlack) -> Value {
    slack
        .messages(RELEASES)
        .into_iter()
        .find(|m| {
            let parent = m.get("thread_ts").is_none_or(|thread| *thread == m["ts"]);
            parent && m["user"] == BOT_USER_ID && m.get("blocks").is_some()
        })
        .unwrap_or_else(|| {
            panic!(
                "no release message in {:#}",
                json!(slack.messages(RELEASES))
            )
        })
}

#[tokio::test]
async fn the_seed_flow_through_socket_mode() {
    let h = Harness::start().await;
    const MENTION_TS: &str = "1764061200.000100";

    // bob asks for PAY-1 with a mention: the release gets its message in the release channel,
    // with buttons, and bob an answer in his mention's thread.
    let ack = h
        .push(socket_envelope::events_api(
            "env-1",
            app_mention(
                "Ev0001",
                "U0BOB",
                MENTION_TS,
                "dobro #PAY-1 https://wiki.example.com/PAY-1 Fix billing rounding no_need_admin",
            ),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-1" }), "a bare ack");
    assert_eq!(h.wait_for_events(1).await, ["ReleaseRequested"]);
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == RELEASES && p["thread_ts"] == MENTION_TS,
            WAIT,
        )
        .await;
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == RELEASES && p.get("blocks").is_some(),
            WAIT,
        )
        .await;
    let message = release_message(&h.slack);
    let ts = message["ts"].as_str().expect("a ts").to_string();
    assert!(message["text"].as_str().unwrap_or("").contains("PAY-1"));

    // carol is no approver: her press is refused and recorded, she alone is told, and the
    // message stays as it was.
    let ack = h
        .push(socket_envelope::interactive(
            "env-2",
            press("U0CAROL", &message, &button(&message, "Accept")),
            false,
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-2" }));
    assert_eq!(
        h.wait_for_events(2).await,
        ["ReleaseRequested", "CommandRefused"]
    );
    match &h.ledger().await[1].event {
        Event::CommandRefused { by, refusal, .. } => {
            assert_eq!(by.as_str(), "U0CAROL");
            assert_eq!(
                *refusal,
                Refusal::NotAllowed {
                    role: Role::Approver
                }
            );
        }
        other => panic!("expected carol's refusal, got {other:?}"),
    }
    h.slack
        .wait_for(
            "chat.postEphemeral",
            |p| p["user"] == "U0CAROL" && p["channel"] == RELEASES,
            WAIT,
        )
        .await;
    assert_eq!(
        h.slack.message(RELEASES, &ts).map(|m| m["blocks"].clone()),
        Some(message["blocks"].clone()),
        "a refused press leaves the release message as it was"
    );
    assert!(h.slack.calls_to("chat.update").is_empty());

    // alice accepts with the button: the message is updated in place, the step is a reply in
    // its thread.
    let ack = h
        .push(socket_envelope::interactive(
            "env-3",
            press("U0ALICE", &message, &button(&message, "Accept")),
            false,
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-3" }));
    assert_eq!(
        h.wait_for_events(3).await,
        ["ReleaseRequested", "CommandRefused", "ReleaseApproved"]
    );
    h.slack
        .wait_for(
            "chat.update",
            |p| p["channel"] == RELEASES && p["ts"] == ts,
            WAIT,
        )
        .await;
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p["thread_ts"] == ts && p["text"].as_str().unwrap_or("").contains("accepted"),
            WAIT,
        )
        .await;
    let accepted = h.slack.message(RELEASES, &ts).expect("the release message");
    assert!(
        accepted["blocks"] != message["blocks"],
        "the accepted message shows the next step: {accepted:#}"
    );

    // carol tries to start it with the slash command: refused, to her alone; the ack carries
    // no message.
    let ack = h
        .push(socket_envelope::slash_commands(
            "env-4",
            slash_command_fields("U0CAROL", "dep start PAY-1", "1764061380.carol.start"),
        ))
        .await;
    assert_eq!(
        ack,
        json!({ "envelope_id": "env-4" }),
        "no payload in a slash command's ack"
    );
    h.wait_for_events(4).await;
    match &h.ledger().await[3].event {
        Event::CommandRefused { by, refusal, .. } => {
            assert_eq!(by.as_str(), "U0CAROL");
            assert_eq!(
                *refusal,
                Refusal::NotAllowed {
                    role: Role::RequesterOrAdmin
                }
            );
        }
        other => panic!("expected carol's refusal, got {other:?}"),
    }
    wait_until(|| async {
        let to_carol = h.slack.calls_to("chat.postEphemeral");
        to_carol.iter().filter(|p| p["user"] == "U0CAROL").count() == 2
    })
    .await;

    // bob starts and finishes the deployment with the slash command.
    let ack = h
        .push(socket_envelope::slash_commands(
            "env-5",
            slash_command_fields("U0BOB", "dep start PAY-1", "1764061440.bob.start"),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-5" }));
    h.wait_for_events(5).await;
    let ack = h
        .push(socket_envelope::slash_commands(
            "env-6",
            slash_command_fields("U0BOB", "dep finish PAY-1", "1764061500.bob.finish"),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-6" }));
    assert_eq!(
        h.wait_for_events(6).await,
        [
            "ReleaseRequested",
            "CommandRefused",
            "ReleaseApproved",
            "CommandRefused",
            "DeploymentStarted",
            "DeploymentFinished"
        ]
    );
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p["thread_ts"] == ts && p["text"].as_str().unwrap_or("").contains("finished"),
            WAIT,
        )
        .await;
    h.slack
        .wait_for("chat.postEphemeral", |p| p["user"] == "U0BOB", WAIT)
        .await;

    // Every event is the person's, from Slack.
    let ledger = h.ledger().await;
    let actors: Vec<_> = ledger
        .iter()
        .map(|r| r.metadata.actor.id.to_string())
        .collect();
    assert_eq!(
        actors,
        ["U0BOB", "U0CAROL", "U0ALICE", "U0CAROL", "U0BOB", "U0BOB"]
    );
    assert!(
        ledger
            .iter()
            .all(|r| r.metadata.actor.source == Source::Slack)
    );
}

#[tokio::test]
async fn a_direct_message_is_answered_in_the_dm() {
    let h = Harness::start().await;
    let dm = FakeSlack::dm_channel("U0BOB");
    let ack = h
        .push(socket_envelope::events_api(
            "env-dm",
            json!({
                "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "event": {
                    "type": "message",
                    "channel": dm,
                    "user": "U0BOB",
                    "text": "queue",
                    "ts": "1764061200.000100",
                    "event_ts": "1764061200.000100",
                    "channel_type": "im",
                },
                "type": "event_callback",
                "event_id": "Ev0DM",
                "event_time": 1_764_061_200,
            }),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-dm" }));
    h.slack
        .wait_for("chat.postMessage", |p| p["channel"] == dm, WAIT)
        .await;
    assert!(h.event_types().await.is_empty(), "a query records nothing");
}

#[tokio::test]
async fn the_ack_does_not_wait_for_the_work() {
    let h = Harness::start().await;
    // The front's first Web API call for a command (who is U0BOB?) is held up for 3 seconds.
    h.slack.rate_limit("users.info", 1, 3);
    let started = tokio::time::Instant::now();
    h.slack.socket_send(socket_envelope::events_api(
        "env-slow",
        app_mention(
            "Ev0007",
            "U0BOB",
            "1764061200.000100",
            "dobro #PAY-7 https://wiki.example.com/PAY-7 Slow Slack",
        ),
    ));
    h.slack
        .wait_for_ack("env-slow", Duration::from_secs(1))
        .await;
    assert!(
        h.event_types().await.is_empty(),
        "acknowledged before the command was handled"
    );
    assert_eq!(h.wait_for_events(1).await, ["ReleaseRequested"]);
    assert!(started.elapsed() >= Duration::from_secs(3));
}

/// Over Socket Mode as over HTTP: the shortcut opens the request modal, and a submission that
/// fails the ticket checks is acknowledged with `response_action: errors` in the ack's
/// payload, recording nothing; a good one closes it (a bare ack) and is recorded.
#[tokio::test]
async fn a_modal_submitted_through_socket_mode_is_checked_in_the_acknowledgement() {
    let h = Harness::start().await;
    let ack = h
        .push(socket_envelope::interactive(
            "env-shortcut",
            support::slack::shortcut("U0BOB", "request_release", "555.666.shortcut"),
            false,
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-shortcut" }));
    let opened = h
        .slack
        .wait_for(
            "views.open",
            |p| p["trigger_id"] == "555.666.shortcut",
            WAIT,
        )
        .await;
    assert_eq!(opened["view"]["callback_id"], "request_release");
    let modal = h.slack.modals()[0].clone();
    let values = |ticket: &str| {
        json!({
            "ticket": {"ticket": support::slack::typed(ticket)},
            "wiki": {"wiki": support::slack::typed("https://wiki.example.com/pay-1")},
            "admin": {"admin": {"type": "checkboxes", "selected_options": []}},
        })
    };
    let ack = h
        .push(socket_envelope::interactive(
            "env-bad",
            support::slack::view_submission("U0BOB", &modal, values("PAY 1")),
            true,
        ))
        .await;
    assert_eq!(ack["envelope_id"], "env-bad");
    assert_eq!(ack["payload"]["response_action"], "errors", "{ack}");
    assert!(ack["payload"]["errors"]["ticket"].is_string(), "{ack}");
    let ack = h
        .push(socket_envelope::interactive(
            "env-good",
            support::slack::view_submission("U0BOB", &modal, values("PAY-1")),
            true,
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-good" }));
    assert_eq!(h.wait_for_events(1).await, ["ReleaseRequested"]);
}

#[tokio::test]
async fn other_events_and_payloads_are_acknowledged_and_ignored() {
    let h = Harness::start().await;
    // An event the bot does not subscribe to.
    let ack = h
        .push(socket_envelope::events_api(
            "env-reaction",
            json!({
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "event": {
                    "type": "reaction_added",
                    "user": "U0BOB",
                    "reaction": "thumbsup",
                    "item_user": "U0DOBROBOT",
                    "item": { "type": "message", "channel": RELEASES, "ts": "1764061200.000100" },
                    "event_ts": "1764061260.000200",
                },
                "type": "event_callback",
                "event_id": "Ev0REACTION",
                "event_time": 1_764_061_260,
            }),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-reaction" }));
    // The bot's own message in a channel.
    let ack = h
        .push(socket_envelope::events_api(
            "env-own",
            json!({
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "event": {
                    "type": "message",
                    "channel": RELEASES,
                    "user": BOT_USER_ID,
                    "bot_id": "B0DOBROBOT",
                    "text": "dobro #PAY-9 https://wiki.example.com/PAY-9 Echo",
                    "ts": "1764061320.000300",
                    "channel_type": "channel",
                },
                "type": "event_callback",
                "event_id": "Ev0OWN",
                "event_time": 1_764_061_320,
            }),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-own" }));
    // A payload slack-morphism cannot read at all is still acknowledged, so Slack does not
    // redeliver it forever.
    let ack = h
        .push(socket_envelope::interactive(
            "env-garbled",
            json!({ "type": "block_actions", "user": 42 }),
            false,
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-garbled" }));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.event_types().await.is_empty());
    assert!(h.slack.calls_to("chat.postMessage").is_empty());
    assert!(h.slack.calls_to("chat.postEphemeral").is_empty());
}

#[tokio::test]
async fn a_redelivered_envelope_appends_nothing() {
    let h = Harness::start().await;
    let payload = app_mention(
        "Ev0002",
        "U0BOB",
        "1764061200.000100",
        "dobro #PAY-2 https://wiki.example.com/PAY-2 Refunds",
    );
    h.push(socket_envelope::events_api("env-first", payload.clone()))
        .await;
    assert_eq!(h.wait_for_events(1).await, ["ReleaseRequested"]);
    // The answer in the mention's thread, then the release message and the approvers' notice
    // in its thread: everything the first delivery shows.
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p["thread_ts"] == "1764061200.000100",
            WAIT,
        )
        .await;
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p.to_string().contains("waits for your approval"),
            WAIT,
        )
        .await;
    let first = h.ledger().await;
    let posted = h.slack.calls_to("chat.postMessage").len();

    // Slack redelivers the same event in a new envelope, as after a missed acknowledgement.
    let ack = h
        .push(socket_envelope::events_api_retry(
            "env-retry",
            payload,
            1,
            "timeout",
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-retry" }));

    // Give the redelivery time to reach the ledger, then prove that a later command does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.push(socket_envelope::events_api(
        "env-next",
        app_mention(
            "Ev0003",
            "U0BOB",
            "1764061260.000200",
            "dobro #PAY-3 https://wiki.example.com/PAY-3 Invoices",
        ),
    ))
    .await;
    let types = h.wait_for_events(2).await;
    assert_eq!(types, ["ReleaseRequested", "ReleaseRequested"]);
    let ledger = h.ledger().await;
    assert_eq!(ledger[0], first[0], "the first event is untouched");
    match &ledger[1].event {
        Event::ReleaseRequested { ticket, .. } => assert_eq!(ticket.as_str(), "PAY-3"),
        other => panic!("expected PAY-3's request, got {other:?}"),
    }
    h.slack
        .wait_for(
            "chat.postMessage",
            |p| p["thread_ts"] == "1764061260.000200",
            WAIT,
        )
        .await;
    let about_pay2 = h
        .slack
        .calls_to("chat.postMessage")
        .iter()
        .skip(posted)
        .filter(|p| p.to_string().contains("PAY-2"))
        .count();
    assert_eq!(about_pay2, 0, "the redelivery posted nothing about PAY-2");
}

#[tokio::test]
async fn a_redelivery_racing_the_first_delivery_appends_nothing() {
    let h = Harness::start().await;
    let payload = app_mention(
        "Ev0006",
        "U0BOB",
        "1764061200.000100",
        "dobro #PAY-6 https://wiki.example.com/PAY-6 Twice",
    );
    // Both on the wire before either is handled: two tasks submit the same delivery at once.
    h.slack
        .socket_send(socket_envelope::events_api("env-a", payload.clone()));
    h.slack.socket_send(socket_envelope::events_api_retry(
        "env-b", payload, 1, "timeout",
    ));
    h.slack.wait_for_ack("env-a", WAIT).await;
    h.slack.wait_for_ack("env-b", WAIT).await;
    assert_eq!(h.wait_for_events(1).await, ["ReleaseRequested"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.event_types().await, ["ReleaseRequested"]);
    let release_messages = h
        .slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|p| p["channel"] == RELEASES && p.get("thread_ts").is_none())
        .count();
    assert_eq!(release_messages, 1, "one release, one message");
}

#[tokio::test]
async fn reconnects_when_slack_recycles_or_drops_the_connection() {
    let h = Harness::start().await;
    let before = h.slack.socket_connections_total();

    // Slack announces a refresh: slack-morphism opens a new connection.
    h.slack.socket_disconnect("refresh_requested");
    wait_until(|| async { h.slack.socket_connections_total() > before }).await;
    h.slack.socket_connected(WAIT).await;
    let ack = h
        .push(socket_envelope::events_api(
            "env-after-refresh",
            app_mention(
                "Ev0004",
                "U0BOB",
                "1764061200.000100",
                "dobro #PAY-4 https://wiki.example.com/PAY-4 After refresh",
            ),
        ))
        .await;
    assert_eq!(ack, json!({ "envelope_id": "env-after-refresh" }));
    assert_eq!(h.wait_for_events(1).await, ["ReleaseRequested"]);

    // The socket closes without warning: the same.
    let before = h.slack.socket_connections_total();
    h.slack.socket_drop_all();
    wait_until(|| async { h.slack.socket_connections_total() > before }).await;
    h.slack.socket_connected(WAIT).await;
    h.push(socket_envelope::events_api(
        "env-after-drop",
        app_mention(
            "Ev0005",
            "U0BOB",
            "1764061260.000200",
            "dobro #PAY-5 https://wiki.example.com/PAY-5 After drop",
        ),
    ))
    .await;
    assert_eq!(
        h.wait_for_events(2).await,
        ["ReleaseRequested", "ReleaseRequested"]
    );
}

#[tokio::test]
async fn a_rejected_app_token_is_an_error_at_start() {
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = config(&slack, &dir);
    config.slack.app_token = Some("xapp-wrong".into());
    match App::build(config, settings()).await {
        Err(AppError::Slack(SlackError::Call { method, detail })) => {
            assert_eq!(method, "apps.connections.open");
            assert!(detail.contains("invalid_auth"), "{detail}");
        }
        Err(other) => panic!("expected Slack's refusal of the token, got {other}"),
        Ok(_) => panic!("Socket Mode started with a token Slack refuses"),
    }
}

#[tokio::test]
async fn shutdown_closes_the_connections() {
    let mut h = Harness::start().await;
    h.app.take().expect("started").app.stop().await;
    wait_until(|| async { h.slack.socket_count() == 0 }).await;
}

/// `dobrobot serve` with `SLACK_APP_TOKEN` set takes commands over Socket Mode, and closes its
/// connections when it is told to stop.
#[tokio::test]
async fn serve_runs_socket_mode_when_the_app_token_is_set() {
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("DOBROBOT_CONFIG")
        .env_remove("SLACK_SIGNING_SECRET")
        .env("DOBROBOT_STORE", &store)
        .env("DOBROBOT_APPROVERS", "U0ALICE")
        .env("DOBROBOT_ADMINS", "U0OLEG")
        .env("DOBROBOT_SLACK_CHANNEL", RELEASES)
        .env("DOBROBOT_HTTP_ADDR", "127.0.0.1:0")
        .env("SLACK_API_URL", slack.api_url())
        .env("SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN)
        .env("SLACK_APP_TOKEN", fake_slack::APP_TOKEN)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start dobrobot serve");
    slack.socket_connected(Duration::from_secs(20)).await;

    slack.socket_send(socket_envelope::events_api(
        "env-serve",
        app_mention(
            "Ev0008",
            "U0BOB",
            "1764061200.000100",
            "dobro #PAY-8 https://wiki.example.com/PAY-8 Through serve services=billing",
        ),
    ));
    let ack = slack.wait_for_ack("env-serve", WAIT).await;
    assert_eq!(ack, json!({ "envelope_id": "env-serve" }));
    slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == RELEASES && p["thread_ts"] == "1764061200.000100",
            WAIT,
        )
        .await;

    // SIGTERM, as `docker stop` sends it: serve stops Socket Mode and exits cleanly.
    let pid = serve.id().expect("serve is running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(20), serve.wait())
        .await
        .expect("serve stops within 20s")
        .expect("serve's exit status");
    assert!(status.success(), "serve exited with {status}");
    wait_until(|| async { slack.socket_count() == 0 }).await;

    let store = dobrobot::store::open(&store)
        .await
        .expect("open the ledger");
    let recorded = store
        .read(
            &dobrobot::ledger::stream_name("prod"),
            Direction::Forwards,
            ReadFrom::Revision(0),
            10,
        )
        .await
        .expect("read the ledger");
    let types: Vec<_> = recorded.iter().map(|r| r.event_type.as_str()).collect();
    // The policy serve recorded when it started, then the command.
    assert_eq!(types, ["PolicyChanged", "ReleaseRequested"]);
}
