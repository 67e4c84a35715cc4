//! The write API for pipelines: `POST /api/v1/commands` with a command's text, as a person
//! would type it after the bot's mention. It goes through the same bot as chat (`Bot::handle`:
//! the same parser, rules and ledger), recorded as the actor the pipeline token names, with
//! source `http`.
//!
//! A job that retries a request after a timeout must not record the command twice: the
//! `Idempotency-Key` header becomes the command's delivery id (scoped to the token's actor), so a
//! repeat is recognised by the ledger and records nothing. Its answer then says
//! `already_recorded` and gives the ticket's status as it is now, which is what a retrying
//! client needs to know (did my `dep start` go through?).
//!
//! Nothing is recorded without a pipeline token: a missing or unknown one is a 401 before the
//! body is read.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::access::Access;
use super::problem::Problem;
use crate::answer::Answer;
use crate::bot::Bot;
use crate::domain::{Input, Refusal, ReleaseStatus, TicketKey, UserId, parse};
use crate::envelope::{Actor, Source};
use crate::render::Renderer;

/// The header a client sends a key in, the same on each retry of one command.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The longest idempotency key taken.
const KEY_MAX: usize = 200;

/// What the write API needs.
#[derive(Clone)]
pub struct Commands {
    pub bot: Arc<Bot>,
    pub access: Access,
    /// Plain text, with the tracker's and the pages' links.
    pub renderer: Renderer,
}

/// A command to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// The command as typed: `dep start PAY-1`.
    pub text: String,
    /// Who the client means to act as; refused (403) unless it is the token's actor.
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserId>,
}

/// How a command went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Recorded as the events named.
    Accepted,
    /// Refused, and the refusal recorded.
    Refused,
    /// This idempotency key was recorded before: nothing new.
    AlreadyRecorded,
    /// Not a command: nothing recorded.
    NotUnderstood,
    /// Not recorded: the ledger failed.
    NotRecorded,
    /// A question, answered; nothing recorded.
    Answered,
}

/// The answer to a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandReply {
    pub outcome: Outcome,
    /// The bot's reply in plain text, as `chat` prints it.
    pub text: String,
    /// The revision of the first event recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The types of the events recorded.
    #[serde(default)]
    pub events: Vec<String>,
    /// Why the command was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// The ticket the command is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketKey>,
    /// The ticket's status in the ledger once the command was decided; absent when it has no
    /// open request (never had one, or it ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReleaseStatus>,
}

pub fn routes(commands: Commands) -> Router {
    Router::new()
        .route("/api/v1/commands", post(command))
        .with_state(commands)
}

async fn command(State(api): State<Commands>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(pipeline) = api.access.pipeline(&headers).cloned() else {
        let mut response = Problem::new(
            StatusCode::UNAUTHORIZED,
            "recording a command needs a pipeline token (Authorization: Bearer ...) \
             configured under [[http.pipeline_tokens]]",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dobrobot\""),
        );
        return response;
    };
    let request: CommandRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("expected a JSON body {{\"text\": \"<command>\"}}: {error}"),
            )
            .into_response();
        }
    };
    if let Some(wanted) = &request.actor
        && wanted != &pipeline.actor
    {
        return Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "this pipeline token acts as {}, not {wanted}",
                pipeline.actor
            ),
        )
        .into_response();
    }
    let delivery = match idempotency_key(&headers) {
        Ok(key) => key.map(|key| format!("http:{}:{key}", pipeline.actor)),
        Err(detail) => return Problem::new(StatusCode::BAD_REQUEST, detail).into_response(),
    };
    let actor = Actor {
        id: pipeline.actor.clone(),
        name: pipeline.actor.to_string(),
        source: Source::Http,
    };
    let answer = api.bot.handle(actor, &request.text, delivery).await;
    let ticket = match parse(&request.text) {
        Ok(Input::Command(command)) => command.ticket().cloned(),
        _ => None,
    };
    let status = ticket.as_ref().and_then(|ticket| {
        let snapshot = api.bot.ledger.snapshot();
        snapshot.state.release(ticket).map(|r| r.status())
    });
    let (code, outcome) = match &answer {
        Answer::Accepted { .. } => (StatusCode::OK, Outcome::Accepted),
        Answer::AlreadyRecorded => (StatusCode::OK, Outcome::AlreadyRecorded),
        Answer::Refused(_) => (StatusCode::CONFLICT, Outcome::Refused),
        Answer::NotUnderstood(_) => (StatusCode::BAD_REQUEST, Outcome::NotUnderstood),
        Answer::NotRecorded(_) | Answer::CannotRead(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, Outcome::NotRecorded)
        }
        _ => (StatusCode::OK, Outcome::Answered),
    };
    let reply = CommandReply {
        outcome,
        text: api.renderer.answer(&answer),
        revision: match &answer {
            Answer::Accepted { revision, .. } => Some(*revision),
            _ => None,
        },
        events: match &answer {
            Answer::Accepted { events, .. } => {
                events.iter().map(|e| e.type_name().to_string()).collect()
            }
            _ => Vec::new(),
        },
        refusal: match answer {
            Answer::Refused(refusal) => Some(refusal),
            _ => None,
        },
        ticket,
        status,
    };
    (code, Json(reply)).into_response()
}

/// The request's idempotency key: printable ASCII, at most `KEY_MAX` long.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > KEY_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "Idempotency-Key must be 1 to {KEY_MAX} printable ASCII characters without spaces"
        ));
    }
    Ok(Some(key.to_string()))
}
