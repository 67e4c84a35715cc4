//! The HTTP server: `GET /health`, `/ready` and `/metrics` always, the read API under `/api` and
//! the pages (`/report`) behind the access gate, the write API for pipelines
//! (`POST /api/v1/commands`, behind its own pipeline tokens), and Slack's Events API, interactivity and slash command endpoints when a
//! signing secret is configured. Slack's endpoints answer at once (Slack's 3-second rule) and
//! leave the work to a spawned `SlackFront::handle`. Anything else is a 404 problem.

pub mod access;
pub mod api;
pub mod commands;
pub mod docs;
pub mod health;
pub mod metrics;
pub mod pages;
pub mod problem;
pub mod signature;
pub mod slack;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::get;

use crate::slack::SlackFront;

/// What the Slack endpoints need: the signing secret, and the front that does the work (absent
/// when no bot token is configured: requests are then verified, acknowledged and dropped).
#[derive(Clone)]
pub struct SlackEndpoints {
    pub signing_secret: String,
    pub front: Option<Arc<SlackFront>>,
}

/// The application's routes.
pub fn router(
    readiness: health::Readiness,
    api: api::ReadApi,
    access: access::Access,
    commands: commands::Commands,
    slack: Option<SlackEndpoints>,
) -> Router {
    let pages = pages::routes(std::sync::Arc::new(api.clone()));
    let gated = api::routes(api)
        .merge(pages)
        .route("/api/openapi.json", get(docs::openapi_json))
        .route("/api/docs", get(docs::page))
        .layer(middleware::from_fn_with_state(access, access::gate));
    let router = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready).with_state(readiness.clone()))
        .route("/metrics", get(metrics::metrics).with_state(readiness))
        .merge(gated)
        .merge(commands::routes(commands))
        .fallback(problem::not_found);
    match slack {
        Some(endpoints) => router.merge(slack::routes(endpoints)),
        None => router,
    }
}
