//! Delivery figures: on a fixed ledger, every figure against values computed by hand; on a
//! generated one, against figures computed here from the CLI's `deployments`; the API, the
//! CLI and the page agreeing; bad input refused.

mod support;

use chrono::{DateTime, Duration, Utc};
use proptest::strategy::{Strategy, ValueTree};
use serde_json::{Value, json};

use support::fixtures::monday;
use support::read_api::{Api, fixed_ledger, week};

fn spread(count: u64, median: Option<i64>, p90: Option<i64>) -> Value {
    json!({"count": count, "median_secs": median, "p90_secs": p90})
}

const NONE: (u64, Option<i64>, Option<i64>) = (0, None, None);

/// A row of figures, the spreads as `(count, median, p90)`.
#[allow(clippy::too_many_arguments)]
fn row(
    period: (DateTime<Utc>, DateTime<Utc>),
    service: Option<&str>,
    (deployments, rollbacks): (u64, u64),
    rate: Option<f64>,
    [lead, approval, admin, lock, restore]: [(u64, Option<i64>, Option<i64>); 5],
    unrestored: u64,
) -> Value {
    let s = |(c, m, p)| spread(c, m, p);
    json!({
        "period_start": period.0, "period_end": period.1, "service": service,
        "deployments": deployments, "rollbacks": rollbacks, "change_failure_rate": rate,
        "lead_time": s(lead), "approval_wait": s(approval), "admin_wait": s(admin),
        "lock_wait": s(lock), "time_to_restore": s(restore), "unrestored": unrestored,
    })
}

const MIN: i64 = 60;

#[tokio::test]
async fn every_figure_of_a_fixed_ledger_is_the_one_computed_by_hand() {
    let api = fixed_ledger().await;
    let first = (week(0, 0, 0), week(7, 0, 0));
    let second = (week(7, 0, 0), week(14, 0, 0));
    let restore_pay2 = 7 * 24 * 60 * MIN - 60 * MIN;
    let expected = json!([
        row(
            first,
            None,
            (3, 1),
            Some(1.0 / 3.0),
            [
                (2, Some(60 * MIN), Some(65 * MIN)),
                (3, Some(10 * MIN), Some(20 * MIN)),
                (1, Some(20 * MIN), Some(20 * MIN)),
                (1, Some(10 * MIN), Some(10 * MIN)),
                (1, Some(90 * MIN), Some(90 * MIN)),
            ],
            0
        ),
        row(
            first,
            Some("api"),
            (2, 1),
            Some(0.5),
            [
                (1, Some(65 * MIN), Some(65 * MIN)),
                (2, Some(5 * MIN), Some(20 * MIN)),
                NONE,
                (1, Some(10 * MIN), Some(10 * MIN)),
                (1, Some(90 * MIN), Some(90 * MIN)),
            ],
            0
        ),
        row(
            first,
            Some("billing"),
            (1, 0),
            Some(0.0),
            [
                (1, Some(60 * MIN), Some(60 * MIN)),
                (1, Some(10 * MIN), Some(10 * MIN)),
                (1, Some(20 * MIN), Some(20 * MIN)),
                NONE,
                NONE,
            ],
            0
        ),
        row(
            second,
            None,
            (2, 2),
            Some(1.0),
            [
                NONE,
                (2, Some(5 * MIN), Some(30 * MIN)),
                (1, Some(60 * MIN), Some(60 * MIN)),
                NONE,
                (1, Some(restore_pay2), Some(restore_pay2)),
            ],
            1
        ),
        row(
            second,
            Some("api"),
            (1, 1),
            Some(1.0),
            [NONE, (1, Some(5 * MIN), Some(5 * MIN)), NONE, NONE, NONE],
            1
        ),
        row(
            second,
            Some("billing"),
            (1, 1),
            Some(1.0),
            [
                NONE,
                (1, Some(30 * MIN), Some(30 * MIN)),
                (1, Some(60 * MIN), Some(60 * MIN)),
                NONE,
                (1, Some(restore_pay2), Some(restore_pay2)),
            ],
            0
        ),
    ]);
    let range = "since=2026-03-02T00:00:00Z&until=2026-03-16T00:00:00Z";
    let page = api.json(&format!("/api/v1/report?{range}")).await;
    assert_eq!(page["items"], expected);
    assert_eq!(page["next_cursor"], Value::Null);

    // The CLI on the ledger says the same.
    let cli = api.cli(&[
        "report",
        "--since",
        "2026-03-02T00:00:00Z",
        "--until",
        "2026-03-16T00:00:00Z",
    ]);
    assert_eq!(cli, expected);

    // One service: its rows only, every period.
    let billing = api
        .items(&format!("/api/v1/report?{range}&service=billing"))
        .await;
    let expected_billing: Vec<Value> = expected
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"] == "billing")
        .cloned()
        .collect();
    assert_eq!(billing, expected_billing);

    // A day at a time: Monday's row, and the rollbacks on the Tuesday and Thursday after.
    let days = api
        .items("/api/v1/report?since=2026-03-02&until=2026-03-16&per=day&service=api")
        .await;
    assert_eq!(days.len(), 14);
    let per_day: Vec<u64> = days
        .iter()
        .map(|d| d["deployments"].as_u64().unwrap())
        .collect();
    assert_eq!(per_day, [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);

    // The whole range in one row.
    let whole = api
        .items(&format!("/api/v1/report?{range}&per=range"))
        .await;
    assert_eq!(whole[0]["deployments"], 5);
    assert_eq!(whole[0]["rollbacks"], 3);
    assert_eq!(
        whole[0]["lead_time"],
        spread(2, Some(60 * MIN), Some(65 * MIN))
    );

    // A range that ends before PAY-4 still finds the restore after it; a range that starts
    // after the rollback does not count it.
    let late = api
        .items("/api/v1/report?since=2026-03-11T00:00:00Z&until=2026-03-16T00:00:00Z&per=range&service=billing")
        .await;
    assert_eq!(late[0]["deployments"], 0);
    assert_eq!(late[0]["time_to_restore"], spread(0, None, None));
}

#[tokio::test]
async fn the_report_page_draws_the_figures_and_says_what_was_wrong() {
    let api = fixed_ledger().await;
    let response = api
        .get("/report?since=2026-03-02&until=2026-03-16&service=&per=week")
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    // A bar per series and week, carrying its value: 2 finished and 1 rolled back in the first
    // week, none finished and 2 rolled back in the second.
    for (series, value) in [
        ("finished", "2"),
        ("rolled back", "1"),
        ("finished", "0"),
        ("rolled back", "2"),
    ] {
        let bar = format!(r#"data-series="{series}" data-value="{value}""#);
        assert!(html.contains(&bar), "no bar {bar}");
    }
    assert!(html.contains(r#"<option selected>week</option>"#));
    assert!(html.contains("<option>billing</option>"));
    // The table has every row of the API's answer.
    assert_eq!(html.matches("<tr>").count(), 1 + 6, "a header and six rows");

    let one = api
        .get("/report?since=2026-03-02&until=2026-03-16&service=billing")
        .await
        .text()
        .await
        .unwrap();
    assert!(one.contains("Delivery figures: billing"));
    assert!(one.contains("<option selected>billing</option>"));

    let bad = api.get("/report?since=yesterday-ish").await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(html.contains("<code>since</code>"), "{html}");
    assert!(html.contains("is not a time"), "{html}");
}

#[tokio::test]
async fn bad_report_questions_are_refused_with_the_reason() {
    let api = Api::start(|_| {}).await;
    api.run(&[("bob", "dobro #PAY-1 https://wiki/1 rounding")])
        .await;
    for (query, parameter, says) in [
        ("per=month", "per", "day, week, range"),
        (
            "since=2026-03-10&until=2026-03-02",
            "since",
            "the range is empty",
        ),
        ("since=2000-01-01&per=day", "since", "at most"),
        ("service=Not%20A%20Service", "service", ""),
    ] {
        let response = api.get(&format!("/api/v1/report?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["invalid-params"][0]["name"], parameter, "{query}");
        let reason = problem["invalid-params"][0]["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{query}: {reason}");
    }
    // The CLI refuses the same as a usage error.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
        .args(["--store", &api.app.config.store])
        .env("DOBROBOT_MODELS", api.app.config.models_path())
        .env_remove("DOBROBOT_CONFIG")
        .env_remove("DOBROBOT_SERVER")
        .args(["report", "--since", "2026-03-10", "--until", "2026-03-02"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the range is empty"));
}

/// What the report should say, computed here from the CLI's `deployments` rows: an independent
/// reading of the same definitions (the README's).
fn from_deployments(
    deployments: &[Value],
    periods: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<Value> {
    let time = |v: &Value| -> Option<DateTime<Utc>> { v.as_str().map(|s| s.parse().unwrap()) };
    let secs = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_seconds().max(0);
    let rank = |mut v: Vec<i64>, p: usize| -> Option<i64> {
        v.sort();
        let k = (v.len() * p).div_ceil(100).max(1);
        v.get(k - 1).copied()
    };
    let spread = |v: Vec<i64>| spread(v.len() as u64, rank(v.clone(), 50), rank(v, 90));
    periods
        .iter()
        .map(|&(start, end)| {
            let ended: Vec<&Value> = deployments
                .iter()
                .filter(|d| {
                    (d["outcome"] == "finished" || d["outcome"] == "rolled_back")
                        && time(&d["finished_at"]).is_some_and(|t| start <= t && t < end)
                })
                .collect();
            let rollbacks: Vec<&&Value> = ended
                .iter()
                .filter(|d| d["outcome"] == "rolled_back")
                .collect();
            let lead = ended
                .iter()
                .filter(|d| d["outcome"] == "finished")
                .map(|d| {
                    secs(
                        time(&d["requested_at"]).unwrap(),
                        time(&d["finished_at"]).unwrap(),
                    )
                })
                .collect();
            let approval = ended
                .iter()
                .filter_map(|d| Some(secs(time(&d["requested_at"])?, time(&d["accepted_at"])?)))
                .collect();
            // The next finished deployment of each service the rollback touched.
            let mut restores = Vec::new();
            let mut unrestored = 0;
            for d in &rollbacks {
                let at = time(&d["finished_at"]).unwrap();
                let back: Option<Vec<DateTime<Utc>>> = d["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|service| {
                        deployments
                            .iter()
                            .filter(|n| {
                                n["outcome"] == "finished"
                                    && n["services"].as_array().unwrap().contains(service)
                            })
                            .filter_map(|n| time(&n["finished_at"]))
                            .filter(|t| *t > at)
                            .min()
                    })
                    .collect();
                match back.and_then(|b| b.into_iter().max()) {
                    Some(back) => restores.push(secs(at, back)),
                    None => unrestored += 1,
                }
            }
            json!({
                "deployments": ended.len(),
                "rollbacks": rollbacks.len(),
                "lead_time": spread(lead),
                "approval_wait": spread(approval),
                "time_to_restore": spread(restores),
                "unrestored": unrestored,
            })
        })
        .collect()
}

#[tokio::test]
async fn a_generated_ledger_reports_what_its_deployments_listing_says() {
    let api = Api::start(|_| {}).await;
    // Four releases at a time (two on billing, two on api, in one conflict group), each going
    // request, approval, admin, start, then finish or (one in four) rollback, a step at a
    // time at random gaps over about five weeks: starts held by each other's locks are refused
    // and tried again later. From a fixed seed.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let turns = proptest::collection::vec((0..4usize, 1..150i64, 0..4u8), 1500)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let mut steps = [0usize; 4];
    let mut numbers = [0usize; 4];
    let mut at = monday();
    for (slot, gap, roll) in turns {
        at += Duration::minutes(gap);
        let project = if slot % 2 == 0 { "PAY" } else { "API" };
        let ticket = format!("{project}-{}", numbers[slot] * 4 + slot + 1);
        let (who, text) = match steps[slot] {
            0 => (
                "bob",
                format!("dobro #{ticket} https://wiki/{ticket} change"),
            ),
            1 => ("alice", format!("accept {ticket}")),
            2 => ("oleg", format!("here {ticket}")),
            3 => ("bob", format!("dep start {ticket}")),
            _ if roll == 0 => ("bob", format!("dep rollback {ticket} errors")),
            _ => ("bob", format!("dep finish {ticket}")),
        };
        if api.say_at(at, who, &text).await {
            steps[slot] += 1;
            if steps[slot] == 5 {
                steps[slot] = 0;
                numbers[slot] += 1;
            }
        }
    }
    api.settle().await;
    let deployments = api.cli(&["deployments"]);
    let deployments = deployments.as_array().unwrap();
    let ended = deployments
        .iter()
        .filter(|d| d["outcome"] == "finished" || d["outcome"] == "rolled_back")
        .count();
    assert!(ended >= 20, "the history has deployments to count: {ended}");

    // From a time in the middle of the first day, a day at a time.
    let since = monday() + Duration::hours(5) + Duration::minutes(17);
    let until = at + Duration::hours(1);
    let report = api.cli(&[
        "report",
        "--since",
        &since.to_rfc3339(),
        "--until",
        &until.to_rfc3339(),
        "--per",
        "day",
    ]);
    let all: Vec<&Value> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"].is_null())
        .collect();
    let periods: Vec<(DateTime<Utc>, DateTime<Utc>)> = all
        .iter()
        .map(|r| {
            (
                r["period_start"].as_str().unwrap().parse().unwrap(),
                r["period_end"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(periods.first().unwrap().0, since);
    assert_eq!(periods.last().unwrap().1, until);
    assert!(periods.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
    let expected = from_deployments(deployments, &periods);
    let total: u64 = all.iter().map(|r| r["deployments"].as_u64().unwrap()).sum();
    assert!(total > 0, "the range holds deployments");
    for (row, expected) in all.iter().zip(&expected) {
        for field in [
            "deployments",
            "rollbacks",
            "lead_time",
            "approval_wait",
            "time_to_restore",
            "unrestored",
        ] {
            assert_eq!(
                row[field], expected[field],
                "{field} of the day from {}",
                row["period_start"]
            );
        }
    }
}
