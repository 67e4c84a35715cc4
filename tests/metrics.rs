//! `GET /metrics` of the app as `serve` builds it, after the seed flow through Slack up to a
//! start refused for a lock: every family the README's alerts use is there, with the values the
//! ledger implies. One test in its own binary, because the counters are the process's.

mod support;

use std::collections::HashMap;

use support::app::TestApp;
use support::fixtures::wait_until;
use support::slack::HELD_BY_A_LOCK;

/// `name{labels}` -> value, from the text format.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("a sample line");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_commands_refusals_appends_and_slack_calls_and_gauge_the_ledger() {
    let app = TestApp::spawn().await;
    app.run_steps(&HELD_BY_A_LOCK).await;
    // The presenter has shown the last step (the refusal is answered to carol).
    app.wait_ephemeral("U0CAROL", "locked").await;

    let scrape = || async {
        let response = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        response.text().await.unwrap()
    };
    let text = scrape().await;
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let m = samples(&text);
    let get = |name: &str| {
        *m.get(name)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };

    assert_eq!(
        get(r#"dobrobot_commands_total{command="dobro",outcome="accepted"}"#),
        2.0
    );
    assert_eq!(
        get(r#"dobrobot_commands_total{command="dep start",outcome="refused"}"#),
        1.0
    );
    assert_eq!(get(r#"dobrobot_refusals_total{reason="lock_held"}"#), 1.0);
    assert!(get("dobrobot_append_seconds_count") >= 1.0);
    assert_eq!(get("dobrobot_queue_length"), 2.0);
    assert_eq!(
        get("dobrobot_open_locks"),
        1.0,
        "billing, no conflict group"
    );
    assert!(get("dobrobot_oldest_lock_age_seconds") >= 0.0);
    assert_eq!(get("dobrobot_follower_lag_events"), 0.0);
    assert_eq!(get("dobrobot_follower_caught_up"), 1.0);
    assert_eq!(get("dobrobot_ledger_up"), 1.0);
    assert!(get(r#"dobrobot_slack_api_calls_total{method="chat.postMessage"}"#) >= 1.0);

    // A Slack call answered with an error (rate limited, then tried again) is counted as one.
    app.slack.rate_limit("chat.postEphemeral", 1, 0);
    app.slash("U0CAROL", "queue", "trigger-failing").await;
    wait_until(|| async {
        samples(&scrape().await)
            .get(r#"dobrobot_slack_api_errors_total{method="chat.postEphemeral"}"#)
            .is_some_and(|n| *n >= 1.0)
    })
    .await;
}
