//! The HTTP server: `GET /health` always, and Slack's Events API, interactivity and slash
//! command endpoints when a signing secret is configured. Slack's endpoints answer at once
//! (Slack's 3-second rule) and leave the work to a spawned `SlackFront::handle`.

pub mod health;
pub mod signature;
pub mod slack;

use std::sync::Arc;

use axum::Router;
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
pub fn router(slack: Option<SlackEndpoints>) -> Router {
    let router = Router::new().route("/health", get(health::health));
    match slack {
        Some(endpoints) => router.merge(slack::routes(endpoints)),
        None => router,
    }
}
