//! The Slack front over the Events API, end to end: the real router on 127.0.0.1:0, a real
//! SQLite ledger in a temp dir, and the fake Slack Web API (`fake-slack`) on the other side.
//! Requests are Slack's documented payloads (an `app_mention` inside `event_callback`, a
//! `message.im`, a `block_actions` form `payload=`, a slash-command form), signed with a test
//! secret the way Slack signs them.
//!
//! The tests assert what the ledger recorded and what Slack would show: the release's one
//! message (posted, then `chat.update`d), the replies in its thread, the notices and the
//! ephemeral refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dobrobot::bot::{Bot, ReplyKind};
use dobrobot::config::{Config, Roles};
use dobrobot::domain::{RoleEntry, UserId};
use dobrobot::envelope;
use dobrobot::envelope::{Actor, Source};
use dobrobot::http::{self, SlackEndpoints};
use dobrobot::ledger::{Ledger, Options};
use dobrobot::reply::Renderer;
use dobrobot::slack::SlackFront;
use dobrobot::store::sqlite::SqliteStore;
use dobrobot::store::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
    StoreError, Subscription,
};
use fake_slack::{FakeSlack, Outcome};
use insta::assert_snapshot;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const CHANNEL: &str = "C0RELEASES";
const WAIT: Duration = Duration::from_secs(10);

/// The application under test, wired like `dobrobot serve`, with a store that can be taken
/// down (a stand-in for an unreachable backend).
struct App {
    slack: FakeSlack,
    base: String,
    http: reqwest::Client,
    store: Arc<Switchable>,
    stream: String,
    bot: Arc<Bot>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start() -> App {
        App::start_with(|_| {}, |_| {}).await
    }

    /// Starts the app against a fake Slack that `prepare` has set up, with the test config
    /// changed by `configure`.
    async fn start_with(
        prepare: impl FnOnce(&FakeSlack),
        configure: impl FnOnce(&mut Config),
    ) -> App {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let slack = FakeSlack::start().await;
        prepare(&slack);
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            environment: "test".into(),
            store: format!("sqlite://{}", dir.path().join("ledger.db").display()),
            tracker_url: Some("https://tracker.example.com/browse/".into()),
            roles: Roles {
                approvers: vec![RoleEntry::parse("S0APPROVERS").unwrap()],
                admins: vec![RoleEntry::parse("S0ADMINS").unwrap()],
            },
            ..Config::default()
        };
        config.services.insert("PAY".into(), vec!["billing".into()]);
        config.slack.bot_token = Some(fake_slack::BOT_TOKEN.into());
        config.slack.signing_secret = Some(SECRET.into());
        config.slack.api_url = slack.api_url();
        config.slack.release_channel = Some(CHANNEL.into());
        configure(&mut config);

        let sqlite = SqliteStore::open(dir.path().join("ledger.db"))
            .await
            .unwrap();
        let store = Arc::new(Switchable {
            inner: sqlite,
            down: AtomicBool::new(false),
        });
        let policy = Arc::new(config.policy().unwrap());
        let stream = config.stream();
        let options = Options {
            store_timeout: Duration::from_secs(2),
            ..Options::default()
        };
        let dyn_store: Arc<dyn EventStore> = store.clone();
        let ledger = Ledger::open(dyn_store.clone(), stream.clone(), policy.clone(), options)
            .await
            .unwrap();
        let bot = Arc::new(Bot {
            ledger,
            store: dyn_store,
            stream: stream.clone(),
            policy,
            renderer: Renderer {
                tracker_url: config.tracker_url.clone(),
            },
        });
        let front = SlackFront::open(&config, bot.clone()).await.unwrap();
        // As `dobrobot serve` does: steps recorded elsewhere are shown too.
        dobrobot::slack::follow_ledger(front.clone(), store.clone(), stream.clone());
        let router = http::router(Some(SlackEndpoints {
            signing_secret: SECRET.into(),
            front: Some(front),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        App {
            slack,
            base,
            http: reqwest::Client::new(),
            store,
            stream,
            bot,
            _dir: dir,
        }
    }

    /// POSTs a body signed as Slack signs it, `age` seconds ago.
    async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        age: i64,
        retry: Option<u32>,
    ) -> reqwest::Response {
        let timestamp = (chrono::Utc::now().timestamp() - age).to_string();
        let signature = sign(SECRET, &timestamp, &body);
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature);
        if let Some(n) = retry {
            request = request
                .header("x-slack-retry-num", n.to_string())
                .header("x-slack-retry-reason", "http_timeout");
        }
        request.body(body).send().await.unwrap()
    }

    async fn event(&self, payload: &Value) -> reqwest::Response {
        self.post_signed(
            "/slack/events",
            "application/json",
            payload.to_string(),
            0,
            None,
        )
        .await
    }

    async fn press(&self, user: &str, message_ts: &str, action_id: &str, value: &str) {
        let payload = block_actions(user, message_ts, action_id, value);
        let body = form(&[("payload", &payload.to_string())]);
        let response = self
            .post_signed(
                "/slack/interactivity",
                "application/x-www-form-urlencoded",
                body,
                0,
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    async fn slash(&self, user: &str, text: &str, trigger: &str) {
        let body = slash_command(user, text, trigger);
        let response = self
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                body,
                0,
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "");
    }

    /// The ledger's event types, in order.
    async fn ledger_events(&self) -> Vec<String> {
        self.store
            .inner
            .read(&self.stream, Direction::Forwards, ReadFrom::Start, 1000)
            .await
            .unwrap()
            .iter()
            .map(|e| {
                let decoded = envelope::decode(e).unwrap();
                format!(
                    "{} by {} ({})",
                    e.event_type, decoded.metadata.actor.id, decoded.metadata.actor.name
                )
            })
            .collect()
    }

    /// The top-level messages posted to the release channel (not thread replies).
    fn release_posts(&self) -> Vec<Value> {
        self.slack
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|p| p["channel"] == CHANNEL && p.get("thread_ts").is_none())
            .collect()
    }

    /// Texts of the replies in a thread, in order.
    fn thread(&self, ts: &str) -> Vec<String> {
        self.slack
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|p| p["thread_ts"] == ts)
            .map(|p| p["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn wait_thread_reply(&self, ts: &str, contains: &str) -> String {
        let found = self
            .slack
            .wait_for(
                "chat.postMessage",
                |p| p["thread_ts"] == ts && text_of(p).contains(contains),
                WAIT,
            )
            .await;
        text_of(&found).to_string()
    }

    async fn wait_update(&self, ts: &str, status_contains: &str) -> Value {
        self.slack
            .wait_for(
                "chat.update",
                |p| p["ts"] == ts && blocks_text(p).contains(status_contains),
                WAIT,
            )
            .await
    }

    async fn wait_ephemeral(&self, user: &str, contains: &str) -> String {
        let found = self
            .slack
            .wait_for(
                "chat.postEphemeral",
                |p| p["user"] == user && text_of(p).contains(contains),
                WAIT,
            )
            .await;
        text_of(&found).to_string()
    }
}

/// The SQLite store, which can be made to fail every call as an unreachable backend does.
struct Switchable {
    inner: SqliteStore,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventStore for Switchable {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.check()?;
        self.inner.append(stream, expected, events).await
    }

    async fn read(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read(stream, direction, from, max).await
    }

    async fn subscribe(
        &self,
        stream: &str,
        after: Option<u64>,
    ) -> Result<Subscription, StoreError> {
        self.check()?;
        self.inner.subscribe(stream, after).await
    }
}

// ---- Slack's payloads, as its documentation shows them ----

fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    format!(
        "v0={}",
        hex::encode(hmac_sha256(
            secret.as_bytes(),
            format!("v0:{timestamp}:{body}").as_bytes()
        ))
    )
}

/// HMAC-SHA256 (RFC 2104), as Slack signs requests.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

fn event_callback(event_id: &str, event: Value) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": fake_slack::TEAM_ID,
        "api_app_id": fake_slack::APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_764_062_400,
        "authorizations": [{
            "enterprise_id": null,
            "team_id": fake_slack::TEAM_ID,
            "user_id": fake_slack::BOT_USER_ID,
            "is_bot": true,
            "is_enterprise_install": false
        }],
        "is_ext_shared_channel": false,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0"
    })
}

fn app_mention(event_id: &str, user: &str, ts: &str, text: &str) -> Value {
    event_callback(
        event_id,
        json!({
            "type": "app_mention",
            "user": user,
            "text": format!("<@{}> {text}", fake_slack::BOT_USER_ID),
            "ts": ts,
            "client_msg_id": format!("msg-{event_id}"),
            "team": fake_slack::TEAM_ID,
            "channel": CHANNEL,
            "event_ts": ts
        }),
    )
}

fn direct_message(event_id: &str, user: &str, ts: &str, text: &str) -> Value {
    event_callback(
        event_id,
        json!({
            "type": "message",
            "channel": FakeSlack::dm_channel(user),
            "user": user,
            "text": text,
            "ts": ts,
            "client_msg_id": format!("msg-{event_id}"),
            "team": fake_slack::TEAM_ID,
            "event_ts": ts,
            "channel_type": "im"
        }),
    )
}

/// Slack gives each press its own `action_ts`.
static PRESSES: AtomicU64 = AtomicU64::new(1);

fn block_actions(user: &str, message_ts: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": fake_slack::TEAM_ID },
        "api_app_id": fake_slack::APP_ID,
        "token": "XXYYZZ",
        "container": { "type": "message", "message_ts": message_ts, "channel_id": CHANNEL, "is_ephemeral": false },
        "trigger_id": format!("1{}.98765.{action_id}", message_ts.replace('.', "")),
        "team": { "id": fake_slack::TEAM_ID, "domain": "dobro-test" },
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": { "id": CHANNEL, "name": "releases" },
        "state": { "values": {} },
        "response_url": "https://hooks.slack.com/actions/T0DOBRO/1/abc",
        "actions": [{
            "action_id": action_id,
            "block_id": "next",
            "text": { "type": "plain_text", "text": action_id, "emoji": true },
            "value": value,
            "type": "button",
            "action_ts": format!("1764062500.{:06}", PRESSES.fetch_add(1, Ordering::SeqCst))
        }]
    })
}

fn slash_command(user: &str, text: &str, trigger: &str) -> String {
    form(&[
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", fake_slack::TEAM_ID),
        ("team_domain", "dobro-test"),
        ("channel_id", CHANNEL),
        ("channel_name", "releases"),
        ("user_id", user),
        ("user_name", &user.to_lowercase()),
        ("command", "/dobro"),
        ("text", text),
        ("api_app_id", fake_slack::APP_ID),
        ("is_enterprise_install", "false"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0DOBRO/34529/abcdef",
        ),
        ("trigger_id", trigger),
    ])
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    form.finish()
}

fn text_of(params: &Value) -> &str {
    params["text"].as_str().unwrap_or_default()
}

/// Every text of a message's blocks, joined: what a person reads in it.
fn blocks_text(params: &Value) -> String {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(text)) = map.get("text") {
                    out.push(text.clone());
                }
                for (key, v) in map {
                    if key != "text" || !v.is_string() {
                        collect(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(&params["blocks"], &mut out);
    out.join("\n")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

/// The request, as bob types it.
const REQUEST: &str = "dobro #PAY-1 <https://wiki.example.com/pay-1> fix rounding in invoices";

async fn request_release(app: &App) -> String {
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
    let app = App::start().await;

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
            "value": "reject PAY-1 rejected with the button"
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
          "value": "dep rollback PAY-1 rolled back with the button"
        }
      ],
      "type": "actions"
    }
    "#);
    let started = app.wait_thread_reply(&ts, "started by").await;
    assert_snapshot!(started, @"Deployment of <https://tracker.example.com/browse/PAY-1|PAY-1> started by <@U0BOB> on billing. When done: `dep finish PAY-1` or `dep rollback PAY-1 <reason>`.");
    let in_dm = app
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == FakeSlack::dm_channel("U0BOB"),
            WAIT,
        )
        .await;
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
    Deployment of <https://tracker.example.com/browse/PAY-1|PAY-1> started by <@U0BOB> on billing. When done: `dep finish PAY-1` or `dep rollback PAY-1 <reason>`.
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
    let app = App::start().await;
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

#[tokio::test]
async fn a_bad_signature_or_a_stale_timestamp_gets_401_and_records_nothing() {
    let app = App::start().await;
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
    let app = App::start().await;
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
    let app = App::start().await;
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
    let app = App::start().await;
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
    let app = App::start_with(
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

#[tokio::test]
async fn a_rate_limited_post_is_retried_after_retry_after() {
    let app = App::start().await;
    app.slack.rate_limit("chat.postMessage", 2, 1);
    let started = std::time::Instant::now();
    request_release(&app).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
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
    let app = App::start().await;
    app.store.down.store(true, Ordering::SeqCst);
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
    assert_snapshot!(told, @"Your command was not recorded: the event store is unavailable: connection refused. Please try again.");
    app.store.down.store(false, Ordering::SeqCst);
    assert!(app.ledger_events().await.is_empty());
    assert!(app.release_posts().is_empty());
}

#[tokio::test]
async fn queue_shows_each_release_its_place_and_what_it_waits_for() {
    let app = App::start().await;
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
    let app = App::start_with(
        |slack| slack.set_group("S0APPROVERS", &["U0ALICE", "U0CAROL"]),
        |config| config.slack.notify = "dm".into(),
    )
    .await;
    let ts = request_release(&app).await;
    let mut texts = Vec::new();
    for approver in ["U0ALICE", "U0CAROL"] {
        let dm = app
            .slack
            .wait_for(
                "chat.postMessage",
                |p| p["channel"] == FakeSlack::dm_channel(approver),
                WAIT,
            )
            .await;
        texts.push(text_of(&dm).to_string());
    }
    assert_eq!(texts[0], texts[1]);
    assert_snapshot!(texts[0], @"Release <https://tracker.example.com/browse/PAY-1|PAY-1> by <@U0BOB> waits for your approval: press *Accept* or *Reject*. See <#C0RELEASES>.");
    app.press("U0ALICE", &ts, "accept", "accept PAY-1").await;
    let to_admin = app
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == FakeSlack::dm_channel("U0OLEG"),
            WAIT,
        )
        .await;
    assert_snapshot!(text_of(&to_admin), @"Release <https://tracker.example.com/browse/PAY-1|PAY-1> is accepted and needs an admin: press *I'm here*. See <#C0RELEASES>.");
    let to_requester = app
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == FakeSlack::dm_channel("U0BOB"),
            WAIT,
        )
        .await;
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
    ] {
        assert!(manifest.contains(needed), "the manifest lacks `{needed}`");
    }
    assert!(manifest.contains("interactivity:\n    is_enabled: true"));
}

#[tokio::test]
async fn two_quick_presses_leave_the_message_at_the_newest_step() {
    let app = App::start().await;
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
    let app = App::start().await;
    let steps = [
        (
            "U0BOB",
            "dobro #PAY-1 https://wiki/x fix rounding no_need_admin",
        ),
        ("U0ALICE", "accept PAY-1"),
        ("U0BOB", "dep start PAY-1"),
        (
            "U0CAROL",
            "dobro #PAY-2 https://wiki/y new invoices no_need_admin",
        ),
        ("U0ALICE", "accept PAY-2"),
        ("U0CAROL", "dep start PAY-2"),
    ];
    for (n, (user, text)) in steps.into_iter().enumerate() {
        app.slash(user, text, &format!("trigger-{n}")).await;
        wait_until(|| async { app.ledger_events().await.len() == n + 1 }).await;
    }
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
    let app = App::start().await;
    let ts = request_release(&app).await;
    app.wait_thread_reply(&ts, "waits for your approval").await;

    let store: Arc<dyn EventStore> = app.store.clone();
    let ledger = Ledger::open(
        store.clone(),
        app.stream.clone(),
        app.bot.ledger.policy(),
        Options::default(),
    )
    .await
    .unwrap();
    let cli = Bot {
        ledger,
        store,
        stream: app.stream.clone(),
        policy: app.bot.policy.clone(),
        renderer: Renderer::default(),
    };
    let alice = Actor {
        id: UserId::parse("U0ALICE").unwrap(),
        name: "alice".into(),
        source: Source::Cli,
    };
    let reply = cli.handle(alice, "accept PAY-1", None).await;
    assert_eq!(reply.kind, ReplyKind::Done, "{}", reply.text);

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

    // A step in Slack is shown by the front that handled it, not again by the follower.
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

async fn wait_until<F, Fut>(check: F)
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
