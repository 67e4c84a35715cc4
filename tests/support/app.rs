//! The app under test, built by `App::build` exactly as `dobrobot serve` builds it: only the
//! settings differ (port 0, a SQLite file in a temp dir, the fake Slack's URL), so the tests
//! cannot drift from production. `TestApp::replica` builds a second process's app on the same
//! store and the same fake Slack.

use std::sync::Arc;
use std::time::Duration;

use dobrobot::app::{App, Settings};
use dobrobot::config::{Config, Roles};
use dobrobot::envelope;
use dobrobot::ledger::Options;
use dobrobot::store::{Direction, ReadFrom};
use fake_slack::FakeSlack;
use serde_json::Value;
use tempfile::TempDir;

use super::fixtures::{WAIT, role};
use super::slack::{
    CHANNEL, SECRET, block_actions, blocks_text, form, sign, slash_command, text_of,
    top_level_posts,
};

/// The config of the Slack tests: approvers and admins are Slack user groups, PAY deploys
/// billing, tickets link to the tracker, and Slack is the fake on `slack`.
pub fn slack_config(slack: &FakeSlack, dir: &TempDir) -> Config {
    let mut config = Config {
        environment: "test".into(),
        store: format!("sqlite://{}", dir.path().join("ledger.db").display()),
        // In the test's directory whichever store a test puts in its place.
        models: Some(dir.path().join("ledger.models").display().to_string()),
        tracker_url: Some("https://tracker.example.com/browse/".into()),
        roles: Roles {
            approvers: vec![role("S0APPROVERS")],
            admins: vec![role("S0ADMINS")],
        },
        ..Config::default()
    };
    config.services.insert("PAY".into(), vec!["billing".into()]);
    config.slack.bot_token = Some(fake_slack::BOT_TOKEN.into());
    config.slack.signing_secret = Some(SECRET.into());
    config.slack.api_url = slack.api_url();
    config.slack.release_channel = Some(CHANNEL.into());
    config.http.addr = "127.0.0.1:0".into();
    config
}

/// `serve`'s settings with a short store timeout, so an outage is answered quickly.
pub fn settings() -> Settings {
    Settings {
        ledger: Options {
            store_timeout: Duration::from_secs(2),
            ..Options::default()
        },
        ..Settings::serve()
    }
}

pub struct TestApp {
    pub app: App,
    pub slack: Arc<FakeSlack>,
    pub config: Config,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub http: reqwest::Client,
    pub dir: Arc<TempDir>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}, |_| {}).await
    }

    /// Starts the app against a fake Slack that `prepare` has set up, with the test config
    /// changed by `configure`.
    pub async fn spawn_with(
        prepare: impl FnOnce(&FakeSlack),
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let slack = FakeSlack::start().await;
        prepare(&slack);
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = slack_config(&slack, &dir);
        configure(&mut config);
        TestApp::build(Arc::new(slack), Arc::new(dir), config, settings()).await
    }

    /// Builds the app with `config` and `settings` as they are.
    pub async fn build(
        slack: Arc<FakeSlack>,
        dir: Arc<TempDir>,
        config: Config,
        settings: Settings,
    ) -> TestApp {
        let app = App::build(config.clone(), settings)
            .await
            .expect("the app builds");
        let base = format!("http://{}", app.address().expect("the HTTP server listens"));
        TestApp {
            app,
            slack,
            config,
            base,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// Another process's app on the same store and the same Slack.
    pub async fn replica(&self) -> TestApp {
        TestApp::build(
            self.slack.clone(),
            self.dir.clone(),
            self.config.clone(),
            settings(),
        )
        .await
    }

    /// POSTs a body signed as Slack signs it, `age` seconds ago.
    pub async fn post_signed(
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

    pub async fn event(&self, payload: &Value) -> reqwest::Response {
        self.post_signed(
            "/slack/events",
            "application/json",
            payload.to_string(),
            0,
            None,
        )
        .await
    }

    pub async fn press(&self, user: &str, message_ts: &str, action_id: &str, value: &str) {
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

    /// POSTs an interactivity payload (a form `payload=`), as Slack does; Slack's answer.
    pub async fn interact(&self, payload: &Value) -> reqwest::Response {
        let body = form(&[("payload", &payload.to_string())]);
        self.post_signed(
            "/slack/interactivity",
            "application/x-www-form-urlencoded",
            body,
            0,
            None,
        )
        .await
    }

    pub async fn slash(&self, user: &str, text: &str, trigger: &str) {
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

    /// Waits until the follower has applied everything the writer wrote.
    pub async fn followed_reaches_the_ledger(&self) {
        let written = self.app.bot.ledger.snapshot().revision;
        assert!(self.app.followed().reached(written, WAIT).await);
    }

    /// Runs each (user, command) with the slash command, waiting for each to be recorded.
    pub async fn run_steps(&self, steps: &[(&str, &str)]) {
        let before = self.ledger_events().await.len();
        for (n, (user, text)) in steps.iter().enumerate() {
            self.slash(user, text, &format!("trigger-{before}-{n}"))
                .await;
            super::fixtures::wait_until(|| async {
                self.ledger_events().await.len() == before + n + 1
            })
            .await;
        }
    }

    /// The ledger's event types, in order, with who recorded them.
    /// The events commands recorded, as `Type by id (name)`: the policy the process recorded
    /// when it started (`PolicyChanged`, by the system) is left out.
    pub async fn ledger_events(&self) -> Vec<String> {
        self.app
            .store
            .read(&self.app.stream, Direction::Forwards, ReadFrom::Start, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event_type != "PolicyChanged")
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
    pub fn release_posts(&self) -> Vec<Value> {
        top_level_posts(&self.slack, CHANNEL)
    }

    /// Texts of the replies in a thread, in order.
    pub fn thread(&self, ts: &str) -> Vec<String> {
        self.slack
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|p| p["thread_ts"] == ts)
            .map(|p| p["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub async fn wait_thread_reply(&self, ts: &str, contains: &str) -> String {
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

    pub async fn wait_update(&self, ts: &str, status_contains: &str) -> Value {
        self.slack
            .wait_for(
                "chat.update",
                |p| p["ts"] == ts && blocks_text(p).contains(status_contains),
                WAIT,
            )
            .await
    }

    /// The first direct message to `user`, once it is posted.
    pub async fn wait_dm(&self, user: &str) -> Value {
        let channel = FakeSlack::dm_channel(user);
        self.slack
            .wait_for("chat.postMessage", |p| p["channel"] == channel, WAIT)
            .await
    }

    pub async fn wait_ephemeral(&self, user: &str, contains: &str) -> String {
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

    /// The ts of the release message of `ticket`'s request (the first top-level post that
    /// names it), once it is posted.
    pub async fn release_message_ts(&self, ticket: &str) -> String {
        let posted = self
            .slack
            .wait_for(
                "chat.postMessage",
                |p| {
                    p["channel"] == CHANNEL
                        && p.get("thread_ts").is_none()
                        && text_of(p).contains(&format!("|{ticket}>"))
                },
                WAIT,
            )
            .await;
        self.slack
            .messages(CHANNEL)
            .into_iter()
            // A parent message has a `thread_ts` of its own once its thread has replies.
            .find(|m| {
                m["text"] == posted["text"]
                    && m.get("thread_ts")
                        .is_none_or(|t| t.is_null() || *t == m["ts"])
            })
            .and_then(|m| m["ts"].as_str().map(String::from))
            .expect("the release message is in the channel")
    }
}
