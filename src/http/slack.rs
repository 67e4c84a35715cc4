//! Slack's three HTTP endpoints. Each verifies the signature (401 and nothing recorded when it
//! fails), answers at once, and spawns the work:
//!
//! - `POST /slack/events`: the Events API (`url_verification` is answered with its challenge;
//!   `event_callback` carries `app_mention` and `message.im`). A retry (`X-Slack-Retry-Num`) is
//!   handled like the first delivery: its delivery id is the same, so the ledger records
//!   nothing new.
//!   `app_home_opened` publishes the person's App Home tab.
//! - `POST /slack/interactivity`: a form with a `payload` JSON: `block_actions` are buttons
//!   (Reject and Rollback open a modal asking why), `shortcut` the "Request a release"
//!   shortcut, `view_submission` a submitted modal, answered with `response_action: errors`
//!   when its fields fail the ticket checks.
//! - `POST /slack/commands`: the `/dobro` slash command's form; `/dobro` alone opens the
//!   request modal.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::json;
use slack_morphism::prelude::*;
use tracing::{info, warn};

use crate::slack::SlackFront;
use crate::slack::interact::{self, Work};

use super::SlackEndpoints;
use super::signature::{self, Unverified};

pub fn routes(endpoints: SlackEndpoints) -> Router {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/interactivity", post(interactivity))
        .route("/slack/commands", post(commands))
        .with_state(Arc::new(endpoints))
}

async fn events(
    State(endpoints): State<Arc<SlackEndpoints>>,
    headers: HeaderMap,
    SignedBody(body): SignedBody,
) -> Response {
    let event: SlackPushEvent = match serde_json::from_str(&body) {
        Ok(event) => event,
        Err(error) => {
            warn!(%error, "an Events API body that is not a push event");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    match event {
        SlackPushEvent::UrlVerification(check) => {
            Json(json!({ "challenge": check.challenge })).into_response()
        }
        SlackPushEvent::EventCallback(callback) => {
            let retry = headers
                .get("x-slack-retry-num")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            info!(event_id = %callback.event_id.0, retry = ?retry, "Slack event");
            spawn(&endpoints.front, interact::push_event(&callback));
            StatusCode::OK.into_response()
        }
        SlackPushEvent::AppRateLimited(limited) => {
            warn!(team = %limited.team_id, "Slack is rate limiting this app's events");
            StatusCode::OK.into_response()
        }
    }
}

async fn interactivity(
    State(endpoints): State<Arc<SlackEndpoints>>,
    SignedBody(body): SignedBody,
) -> Response {
    let Some(payload) = form(&body).remove("payload") else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match serde_json::from_str::<SlackInteractionEvent>(&payload) {
        Ok(event) => {
            let Some(front) = &endpoints.front else {
                warn!("no SLACK_BOT_TOKEN: a Slack interaction was acknowledged and dropped");
                return StatusCode::OK.into_response();
            };
            // A submitted modal's fields are checked here, so the answer can show what to fix.
            let (response, work) = interact::interaction(front, &event);
            spawn(&endpoints.front, work);
            response.into_response()
        }
        Err(error) => {
            warn!(%error, "an interactivity payload that cannot be read");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

async fn commands(
    State(endpoints): State<Arc<SlackEndpoints>>,
    SignedBody(body): SignedBody,
) -> Response {
    let Some(command) = slash_command(form(&body)) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Some(front) = &endpoints.front {
        spawn(&endpoints.front, interact::command(front, &command));
    } else {
        warn!("no SLACK_BOT_TOKEN: a Slack command was acknowledged and dropped");
    }
    // An empty 200 shows nothing; the answer follows as an ephemeral message.
    StatusCode::OK.into_response()
}

/// A request body that Slack signed: the extractor every Slack endpoint takes, so none can
/// skip the check. A request that is not Slack's is logged and gets 401; nothing runs.
struct SignedBody(String);

impl FromRequest<Arc<SlackEndpoints>> for SignedBody {
    type Rejection = Response;

    async fn from_request(
        request: Request,
        endpoints: &Arc<SlackEndpoints>,
    ) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, endpoints)
            .await
            .map_err(IntoResponse::into_response)?;
        signature::verify(&endpoints.signing_secret, &headers, &body, signature::now())
            .map(|text| SignedBody(text.to_string()))
            .map_err(|error| {
                warn!(%error, "refused a request that is not signed by Slack");
                error.into_response()
            })
    }
}

impl IntoResponse for Unverified {
    fn into_response(self) -> Response {
        (StatusCode::UNAUTHORIZED, self.to_string()).into_response()
    }
}

/// Does the work in order, after the acknowledgement.
fn spawn(front: &Option<Arc<SlackFront>>, work: Vec<Work>) {
    if work.is_empty() {
        return;
    }
    let Some(front) = front.clone() else {
        warn!("no SLACK_BOT_TOKEN: a Slack delivery was acknowledged and dropped");
        return;
    };
    tokio::spawn(async move {
        for work in work {
            front.perform(work).await;
        }
    });
}

fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn slash_command(mut form: HashMap<String, String>) -> Option<SlackCommandEvent> {
    let mut take = |name: &str| form.remove(name);
    let team_id = take("team_id")?;
    let channel_id = take("channel_id")?;
    let user_id = take("user_id")?;
    let command = take("command")?;
    let response_url = take("response_url")?.parse().ok()?;
    let trigger_id = take("trigger_id")?;
    let text = take("text");
    Some(
        SlackCommandEvent::new(
            SlackTeamId(team_id),
            SlackChannelId(channel_id),
            SlackUserId(user_id),
            SlackCommandId(command),
            SlackResponseUrl(response_url),
            SlackTriggerId(trigger_id),
        )
        .opt_text(text),
    )
}
