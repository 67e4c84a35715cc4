//! `GET /health`: the process is up and serving HTTP. `GET /ready`: it can answer — the store
//! is reachable and the follower has caught up with the ledger — with how far behind it is.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::follower::Followed;
use crate::store::EventStore;

/// How long `/ready` waits for the store.
const STORE_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process serves HTTP.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "Serving", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

/// Whether the process can answer, and how far behind the ledger its read models are.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    /// `ok`, or why the store is unavailable.
    pub store: String,
    /// The read models have read the whole ledger once.
    pub caught_up: bool,
    /// The ledger could not be decoded: the follower stopped.
    pub follower_failed: bool,
    /// The ledger's last revision, when the store answered.
    pub ledger_revision: Option<u64>,
    /// The last revision in the read models.
    pub follower_revision: Option<u64>,
    /// Events in the ledger the read models do not have yet, when the store answered.
    pub lag: Option<u64>,
}

#[derive(Clone)]
pub struct Readiness {
    pub store: Arc<dyn EventStore>,
    pub stream: String,
    pub followed: Followed,
}

/// Ready: the store answers and the read models have caught up.
#[utoipa::path(get, path = "/ready", tag = "service",
    responses((status = 200, description = "Ready", body = Ready),
              (status = 503, description = "Not ready: the store is unavailable or the read models are catching up", body = Ready)))]
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
    let body = Ready {
        ready,
        store,
        caught_up: progress.caught_up,
        follower_failed: progress.failed,
        ledger_revision,
        follower_revision: progress.revision,
        lag: reachable.then_some(lag),
    };
    (status, Json(body)).into_response()
}
