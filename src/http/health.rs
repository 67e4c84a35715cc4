//! `GET /health`: the process is up and serving HTTP. `GET /ready`: it can answer — the store
//! is reachable and the follower has caught up with the ledger — with how far behind it is.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::follower::Followed;
use crate::store::EventStore;

/// How long `/ready` waits for the store.
const STORE_CHECK: Duration = Duration::from_secs(2);

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Clone)]
pub struct Readiness {
    pub store: Arc<dyn EventStore>,
    pub stream: String,
    pub followed: Followed,
}

pub async fn ready(State(readiness): State<Readiness>) -> Response {
    let progress = readiness.followed.progress();
    let last = tokio::time::timeout(
        STORE_CHECK,
        readiness.store.last_revision(&readiness.stream),
    )
    .await;
    let (store, ledger_revision) = match last {
        Ok(Ok(revision)) => ("ok".to_string(), revision),
        Ok(Err(error)) => (format!("unavailable: {error}"), None),
        Err(_) => (
            format!("unavailable: no answer within {STORE_CHECK:?}"),
            None,
        ),
    };
    let reachable = store == "ok";
    // Events in the ledger the models do not have yet.
    let lag = match (ledger_revision, progress.revision) {
        (Some(ledger), Some(applied)) => ledger.saturating_sub(applied),
        (Some(ledger), None) => ledger + 1,
        (None, _) => 0,
    };
    let ready = reachable && progress.caught_up && !progress.failed;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "store": store,
        "caught_up": progress.caught_up,
        "follower_failed": progress.failed,
        "ledger_revision": ledger_revision,
        "follower_revision": progress.revision,
        "lag": reachable.then_some(lag),
    });
    (status, Json(body)).into_response()
}
