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
use support::fixtures::{submission, t, u, wait_until};

#[tokio::test]
async fn serve_holds_one_subscription_and_its_read_models_equal_a_fresh_fold() {
    let double = Double::start().await;
    let app = TestApp::spawn_with(|_| {}, |config| config.store = double.url()).await;
    let steps = [
        ("U0BOB", "dobro #PAY-1 https://wiki/x fix rounding"),
        ("U0ALICE", "accept PAY-1"),
        ("U0OLEG", "here PAY-1"),
        ("U0BOB", "dep start PAY-1"),
        (
            "U0CAROL",
            "dobro #PAY-2 https://wiki/y new invoices no_need_admin",
        ),
        ("U0ALICE", "accept PAY-2"),
        // Refused (PAY-1 holds the backend lock) and recorded: carol is on the waitlist.
        ("U0CAROL", "dep start PAY-2"),
    ];
    for (n, (user, text)) in steps.into_iter().enumerate() {
        app.slash(user, text, &format!("trigger-{n}")).await;
        wait_until(|| async { app.ledger_events().await.len() == n + 1 }).await;
    }
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
