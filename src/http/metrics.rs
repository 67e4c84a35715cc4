//! `GET /metrics`: the process's counters, and gauges of the ledger read at the scrape.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::health::Readiness;
use crate::metrics::METRICS;

/// How long a scrape waits for the store before it says the ledger is down.
const STORE_CHECK: Duration = Duration::from_secs(2);

pub async fn metrics(State(readiness): State<Readiness>) -> Response {
    let progress = readiness.followed.progress();
    let (queue, locks, oldest) = readiness.followed.read(|models| {
        let state = &models.live.state;
        let oldest = state.locks.values().map(|held| held.since).min();
        (state.releases.len(), state.locks.len(), oldest)
    });
    let m = &*METRICS;
    m.queue_length.set(queue as i64);
    m.open_locks.set(locks as i64);
    m.oldest_lock_age_seconds.set(oldest.map_or(0.0, |since| {
        (Utc::now() - since).num_milliseconds() as f64 / 1000.0
    }));
    m.follower_caught_up
        .set(i64::from(progress.caught_up && !progress.failed));
    let last = tokio::time::timeout(
        STORE_CHECK,
        readiness.store.last_revision(&readiness.stream),
    )
    .await;
    match last {
        Ok(Ok(ledger)) => {
            let _ = m.ledger_up.set(1);
            let lag = match (ledger, progress.revision) {
                (Some(ledger), Some(applied)) => ledger.saturating_sub(applied),
                (Some(ledger), None) => ledger + 1,
                (None, _) => 0,
            };
            let _ = m.follower_lag_events.set(lag as i64);
        }
        _ => {
            let _ = m.ledger_up.set(0);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}
