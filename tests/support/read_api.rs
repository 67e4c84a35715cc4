//! The read API's test harness: the app as `serve` builds it with a clock the test sets, a
//! config without Slack (alice approves, oleg is the admin, PAY deploys billing, API deploys
//! api, both in one conflict group), commands recorded at chosen times, and the CLI on the same
//! ledger.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
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

/// `day` days after Monday 2026-03-02, at `hour:minute` UTC.
pub fn week(day: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0).unwrap() + Duration::days(day)
}

/// Two weeks of releases, each figure's inputs chosen to give round numbers:
///
/// Week of 2026-03-02:
/// - PAY-1 (billing, needs an admin): requested 09:00, accepted 09:10, admin 09:30, started
///   09:40, finished 10:00. Approval 10 min, admin 20 min, lead time 60 min.
/// - API-7 (api): requested 09:45, accepted 09:50, start refused at 09:55 (PAY-1 holds the
///   group lock), started 10:05, rolled back 10:35. Approval 5 min, lock 10 min.
/// - PAY-3: requested and rejected (not a deployment).
/// - API-8 (api): requested 11:00, accepted 11:20, started 11:30, finished 12:05. Approval 20
///   min, lead time 65 min; restores api 90 min after API-7's rollback.
///
/// Week of 2026-03-09:
/// - PAY-2 (billing): requested Tue 09:00, accepted 09:30, admin 10:30, started 10:40, rolled
///   back 11:00. Approval 30 min, admin 60 min. Restored by PAY-4 the week after.
/// - API-9 (api): requested Thu 09:00, accepted 09:05, started 09:10, rolled back 09:20.
///   Approval 5 min; never restored.
///
/// Week of 2026-03-16 (after the range asked about):
/// - PAY-4 (billing): finished Tue 10:00, restoring billing 7 days less an hour after PAY-2.
pub async fn fixed_ledger() -> Api {
    fixed_ledger_with(|_| {}).await
}

/// The same ledger on an app whose config `change` adjusts (a tracker, say).
pub async fn fixed_ledger_with(change: impl FnOnce(&mut Config)) -> Api {
    let api = Api::start(change).await;
    let steps: [(DateTime<Utc>, &str, &str); 30] = [
        (week(0, 9, 0), "bob", "dobro #PAY-1 https://wiki/1 rounding"),
        (week(0, 9, 10), "alice", "accept PAY-1"),
        (week(0, 9, 30), "oleg", "here PAY-1"),
        (week(0, 9, 40), "bob", "dep start PAY-1"),
        (
            week(0, 9, 45),
            "carol",
            "dobro #API-7 https://wiki/7 endpoint no_need_admin",
        ),
        (week(0, 9, 50), "alice", "accept API-7"),
        (week(0, 9, 55), "carol", "dep start API-7"),
        (week(0, 9, 57), "dave", "dobro #PAY-3 https://wiki/3 nope"),
        (week(0, 9, 58), "alice", "reject PAY-3 not this week"),
        (week(0, 10, 0), "bob", "dep finish PAY-1"),
        (week(0, 10, 5), "carol", "dep start API-7"),
        (week(0, 10, 35), "carol", "dep rollback API-7 errors"),
        (
            week(0, 11, 0),
            "carol",
            "dobro #API-8 https://wiki/8 fix no_need_admin",
        ),
        (week(0, 11, 20), "alice", "accept API-8"),
        (week(0, 11, 30), "carol", "dep start API-8"),
        (week(0, 12, 5), "carol", "dep finish API-8"),
        (week(8, 9, 0), "bob", "dobro #PAY-2 https://wiki/2 tax"),
        (week(8, 9, 30), "alice", "accept PAY-2"),
        (week(8, 10, 30), "oleg", "here PAY-2"),
        (week(8, 10, 40), "bob", "dep start PAY-2"),
        (week(8, 11, 0), "bob", "dep rollback PAY-2 wrong totals"),
        (
            week(10, 9, 0),
            "carol",
            "dobro #API-9 https://wiki/9 cache no_need_admin",
        ),
        (week(10, 9, 5), "alice", "accept API-9"),
        (week(10, 9, 10), "carol", "dep start API-9"),
        (week(10, 9, 20), "carol", "dep rollback API-9 slow"),
        (
            week(15, 9, 0),
            "bob",
            "dobro #PAY-4 https://wiki/4 tax again",
        ),
        (week(15, 9, 10), "alice", "accept PAY-4"),
        (week(15, 9, 20), "oleg", "here PAY-4"),
        (week(15, 9, 30), "bob", "dep start PAY-4"),
        (week(15, 10, 0), "bob", "dep finish PAY-4"),
    ];
    for (at, who, text) in steps {
        api.say_at(at, who, text).await;
    }
    api.settle().await;
    api
}
