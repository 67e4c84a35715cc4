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
//! body is parsed.
//!
//! A repeated key answers with the ticket's status now, not with the decision first made: the
//! ledger knows a delivery was recorded, not what it was answered. A client that reuses a key
//! for another command gets `already_recorded` for it; keys are per command (`$CI_JOB_ID-start`).

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
use crate::domain::UserId;
use crate::envelope::{Actor, Source};
use crate::render::Renderer;
use crate::reply::CommandReply;

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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// The command as typed: `dep start PAY-1`.
    pub text: String,
    /// Who the client means to act as; refused (403) unless it is the token's actor.
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub actor: Option<UserId>,
}

pub fn routes(commands: Commands) -> Router {
    Router::new()
        .route("/api/v1/commands", post(command))
        .with_state(commands)
}

/// Records a command's text, as typed after the bot's mention, as the pipeline token's actor.
#[utoipa::path(
    post,
    path = "/api/v1/commands",
    tag = "pipelines",
    request_body(content = CommandRequest, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "The same on every retry of one command: a repeat records nothing new")
    ),
    responses(
        (status = 200, description = "Accepted, already recorded, or a question answered", body = CommandReply),
        (status = 409, description = "Refused; the refusal is recorded", body = CommandReply),
        (status = 400, description = "Not understood (nothing recorded), or a bad body or key", content(
            (CommandReply = "application/json"),
            (Problem = "application/problem+json"),
        )),
        (status = 401, description = "A pipeline token is needed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`as` names another actor than the token's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not recorded: the ledger failed", body = CommandReply),
    )
)]
pub(super) async fn command(
    State(api): State<Commands>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let code = match &answer {
        Answer::Accepted { .. } | Answer::AlreadyRecorded => StatusCode::OK,
        Answer::Refused(_) => StatusCode::CONFLICT,
        Answer::NotUnderstood(_) => StatusCode::BAD_REQUEST,
        Answer::NotRecorded(_) | Answer::CannotRead(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let reply = CommandReply::of(answer, &request.text, &api.bot, &api.renderer);
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
