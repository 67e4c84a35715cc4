//! The one app: `serve`'s process holds exactly one subscription to the ledger stream, and the
//! read models its follower keeps equal a fresh fold of the ledger after the seed flow through
//! Slack and commands recorded by another process (`dobrobot chat`). The ledger is on the
//! EventStoreDB double, which counts the subscriptions clients open.

mod support;

use tokio::io::AsyncWriteExt;

use dobrobot::follower::ReadModels;
use dobrobot::projections::{self, AsOf};
use dobrobot::slack::messages;
use esdb_double::Double;

use support::app::TestApp;
use support::fixtures::{t, u};
use support::slack::HELD_BY_A_LOCK;

#[tokio::test]
async fn serve_holds_one_subscription_and_its_read_models_equal_a_fresh_fold() {
    let double = Double::start().await;
    let app = TestApp::spawn_with(|_| {}, |config| config.store = double.url()).await;
    // The seed flow up to a deployment, and a second release refused its start for the lock
    // (recorded: carol is on the waitlist).
    app.run_steps(&HELD_BY_A_LOCK).await;
    app.slash("U0CAROL", "queue", "trigger-queue").await;
    app.wait_ephemeral("U0CAROL", "Release queue").await;

    let by_serve = ledger_subscriptions(&double, &app);
    assert_eq!(by_serve, 1, "{:?}", double.subscriptions());

    // Another process: `dobrobot chat` finishing PAY-1 and asking again, on the same ledger.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dobrobot.toml");
    std::fs::write(
        &config,
        format!(
            "environment = \"test\"\nstore = \"{}\"\n[services]\nPAY = [\"billing\"]\n",
            double.url()
        ),
    )
    .unwrap();
    // One process, bob's commands on its standard input; the `queue` at the end waits for its
    // own follower, so its subscription is surely open when it exits.
    let mut chat = tokio::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
        .arg("--config")
        .arg(&config)
        .args(["chat", "--as", "U0BOB"])
        .env_remove("DOBROBOT_CONFIG")
        .env_remove("DOBROBOT_MODELS")
        // Its read models file (dobrobot-test.models, on EventStoreDB) in its own directory.
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    stdin
        .write_all(
            b"dep finish PAY-1\n\
              dobro #PAY-3 https://wiki/z more no_need_admin\n\
              cancel PAY-3\n\
              queue\n",
        )
        .await
        .unwrap();
    drop(stdin);
    let chat = chat.wait_with_output().await.unwrap();
    let replies = String::from_utf8_lossy(&chat.stdout);
    assert!(chat.status.success(), "{replies}");
    assert!(replies.contains("Release queue:"), "{replies}");
    // The commands, and two policies: serve's at its start, and with its Slack user groups'
    // members. The chat's config differs (no roles), but a one-off process does not change the
    // recorded rules.
    let last = app.app.store.last_revision(&app.app.stream).await.unwrap();
    assert_eq!(last, Some(10));
    assert!(
        app.app
            .followed()
            .reached(last, std::time::Duration::from_secs(10))
            .await
    );

    let mut fresh = ReadModels::default();
    projections::build(&app.app.store, &app.app.stream, AsOf::Latest, &mut fresh)
        .await
        .unwrap();
    assert_eq!(fresh.revision(), last);
    let followed = app.app.followed().read(ReadModels::clone);
    assert!(
        followed == fresh,
        "the follower's models differ from a fresh fold"
    );
    assert_eq!(
        followed.waitlist.waiting_on(&t("PAY-1")),
        [(u("U0CAROL"), t("PAY-2"))]
    );

    // The `chat` process followed the ledger once too; serve did not subscribe again.
    assert_eq!(
        ledger_subscriptions(&double, &app),
        by_serve + 1,
        "{:?}",
        double.subscriptions()
    );
    let slack_stream = messages::stream_name("test");
    assert!(!double.subscriptions().contains(&slack_stream));
}

fn ledger_subscriptions(double: &Double, app: &TestApp) -> usize {
    double
        .subscriptions()
        .iter()
        .filter(|s| **s == app.app.stream)
        .count()
}
