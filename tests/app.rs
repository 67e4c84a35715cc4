//! The one app: `serve`'s process holds exactly one subscription to the ledger stream, and the
//! read models its follower keeps equal a fresh fold of the ledger after the seed flow through
//! Slack and commands recorded by another process's writer. The ledger is on the EventStoreDB
//! double, which counts the subscriptions clients open.

mod support;

use std::sync::Arc;

use dobrobot::follower::ReadModels;
use dobrobot::ledger::{Ledger, Options};
use dobrobot::projections::{self, AsOf};
use dobrobot::slack::messages;
use esdb_double::Double;

use support::app::TestApp;
use support::fixtures::{submission, t, u};
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

    // Another process's writer on the same ledger: the CLI finishing PAY-1 and asking again.
    let other = Ledger::open(
        dobrobot::store::open(&double.url()).await.unwrap(),
        app.app.stream.clone(),
        Arc::new(app.app.config.policy().unwrap()),
        Options::default(),
    )
    .await
    .unwrap();
    for (who, text) in [
        ("U0BOB", "dep finish PAY-1"),
        ("U0BOB", "dobro #PAY-3 https://wiki/z more no_need_admin"),
        ("U0CAROL", "cancel PAY-3"),
    ] {
        other.submit(submission(who, text)).await.unwrap();
    }
    let last = other.snapshot().revision;
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

    let to = |stream: &str| {
        double
            .subscriptions()
            .iter()
            .filter(|s| s.as_str() == stream)
            .count()
    };
    assert_eq!(to(&app.app.stream), 1, "{:?}", double.subscriptions());
    assert_eq!(to(&messages::stream_name("test")), 0);
}
