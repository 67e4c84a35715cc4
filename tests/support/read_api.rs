//! The read API's test harness: the app as `serve` builds it with a clock the test sets, a
//! config without Slack (alice approves, oleg is the admin, PAY deploys billing, API deploys
//! api, both in one conflict group), commands recorded at chosen times, and the CLI on the same
//! ledger.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use dobrobot::config::{Config, ConflictGroupConfig};
use dobrobot::domain::GroupName;
use dobrobot::envelope::Source;
use serde_json::Value;

use super::app::{TestApp, settings};
use super::fixtures::{TestClock, actor, monday, role};

/// A config without Slack: alice approves, oleg is the admin, PAY deploys billing, API
/// deploys api.
pub fn configure(config: &mut Config) {
    config.slack.bot_token = None;
    config.slack.signing_secret = None;
    config.roles.approvers = vec![role("alice")];
    config.roles.admins = vec![role("oleg")];
    config.services.insert("API".into(), vec!["api".into()]);
    config.conflict_groups = vec![ConflictGroupConfig {
        name: GroupName::parse("backend-core").unwrap(),
        services: vec!["api".into(), "billing".into()],
    }];
}

/// The same, as the CLI reads it from a file.
pub const CLI_CONFIG: &str = r#"environment = "test"
[roles]
approvers = ["alice"]
admins = ["oleg"]
[services]
PAY = ["billing"]
API = ["api"]
[[conflict_groups]]
name = "backend-core"
services = ["api", "billing"]
"#;

pub struct Api {
    pub app: TestApp,
    pub clock: TestClock,
}

impl Api {
    pub async fn start(change: impl FnOnce(&mut Config)) -> Api {
        let slack = Arc::new(fake_slack::FakeSlack::start().await);
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut config = super::app::slack_config(&slack, &dir);
        configure(&mut config);
        change(&mut config);
        let clock = TestClock::new(monday());
        let mut settings = settings();
        settings.ledger.clock = clock.clock();
        let app = TestApp::build(slack, dir, config, settings).await;
        Api { app, clock }
    }

    /// Records `text` from `who`, a minute after the last command.
    pub async fn say(&self, who: &str, text: &str) {
        let now = self.clock.clock().now();
        self.say_at(now + Duration::minutes(1), who, text).await;
    }

    /// Records `text` from `who` at `at`, carried out or refused (not misunderstood); whether
    /// it was carried out.
    pub async fn say_at(&self, at: DateTime<Utc>, who: &str, text: &str) -> bool {
        self.clock.set(at);
        let answer = self
            .app
            .app
            .bot
            .handle(actor(who, Source::Cli), text, None)
            .await;
        assert!(
            !matches!(
                answer.kind(),
                dobrobot::answer::ReplyKind::Invalid | dobrobot::answer::ReplyKind::Failed
            ),
            "`{text}`: {answer:?}"
        );
        answer.kind() == dobrobot::answer::ReplyKind::Done
    }

    pub async fn run(&self, steps: &[(&str, &str)]) {
        for (who, text) in steps {
            self.say(who, text).await;
        }
        self.settle().await;
    }

    /// Waits until the follower has applied everything written and caught up once.
    pub async fn settle(&self) {
        // The follower has everything the writer wrote.
        let written = self.app.app.bot.ledger.snapshot().revision;
        assert!(
            self.app
                .app
                .followed()
                .reached(written, super::fixtures::WAIT)
                .await
        );
        // And has said it caught up once (the API answers only then): under load the first
        // events can be applied before the subscription says so.
        let deadline = tokio::time::Instant::now() + super::fixtures::WAIT;
        while !self.app.app.followed().progress().caught_up {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the follower never caught up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .http
            .get(format!("{}{path}", self.app.base))
            .send()
            .await
            .unwrap()
    }

    /// A GET that must succeed, as JSON.
    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn items(&self, path: &str) -> Vec<Value> {
        let page = self.json(path).await;
        page["items"].as_array().expect("a page").clone()
    }

    /// The CLI's `--format json` on the same ledger.
    pub fn cli(&self, args: &[&str]) -> Value {
        let config = self.app.dir.path().join("cli.toml");
        std::fs::write(&config, CLI_CONFIG).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
            .args(["--store", &self.app.config.store])
            .env("DOBROBOT_MODELS", self.app.config.models_path())
            .arg("--config")
            .arg(&config)
            .env_remove("DOBROBOT_CONFIG")
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}
