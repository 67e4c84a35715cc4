//! HTTP in and out: turns a request to `/api/<method>` into a method name, a token and
//! parameters, applies the token check and the rate-limit switch, records the call, and
//! writes the answer the way Slack does.
//!
//! Slack takes a method's arguments as a query string, a form body or a JSON body, and so does
//! the fake: slack-morphism 2.31 sends `auth.test`, `users.info` and `usergroups.users.list` as
//! GET with a query string and everything else as a POST with
//! `content-type: application/json; charset=utf-8`; other clients (and Slack's docs) use
//! `application/x-www-form-urlencoded`. Errors are HTTP 200 with `{"ok":false,"error":...}`;
//! only rate limiting changes the status (429, with `Retry-After` in seconds).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

use crate::methods;
use crate::socket;
use crate::state::{Call, Outcome, Shared, TokenKind};

/// Form parameters Slack documents as "a JSON-based array/object, presented as a URL-encoded
/// string": decoded so a test sees the same value whether the bot sent a form or JSON.
const JSON_ENCODED_FORM_FIELDS: &[&str] = &["blocks", "attachments", "metadata", "view"];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/socket", any(socket::upgrade))
        .fallback(api)
        .with_state(shared)
}

/// Everything that is not the websocket: `/api/<method>`, tolerating a doubled slash.
async fn api(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(method) = uri
        .path()
        .strip_prefix("/api/")
        .map(|m| m.trim_start_matches('/'))
        .filter(|m| !m.is_empty())
    else {
        return (StatusCode::NOT_FOUND, "not a Slack API path").into_response();
    };
    let method = method.to_string();

    let (mut params, parse_error) = match parse_params(&uri, &headers, &body) {
        Ok(params) => (params, None),
        Err(error) => (Map::new(), Some(error)),
    };
    let token = bearer(&headers).or_else(|| match params.remove("token") {
        Some(Value::String(token)) => Some(token),
        _ => None,
    });

    let answer = match parse_error {
        Some(error) => Err(error),
        None => authorize(&shared, &method, token.as_deref()),
    };
    if answer.is_ok() && shared.take_stall(&method, &Value::Object(params.clone())) {
        // Left without an answer, as a Slack that took the request and never replied: the
        // call is not recorded, and ends only when the client gives up or goes away.
        std::future::pending::<()>().await;
    }
    let answer = match answer {
        Err(error) => Err(error),
        Ok(()) => match shared.take_rate_limit(&method) {
            Some(retry_after) => {
                let call = Call {
                    method,
                    token,
                    params: Value::Object(params),
                    outcome: Outcome::RateLimited,
                };
                shared.record(call);
                return rate_limited(retry_after);
            }
            None => methods::answer(&shared, &method, &params),
        },
    };

    let (outcome, body) = match answer {
        Ok(mut fields) => {
            fields.insert("ok".to_string(), Value::Bool(true));
            (Outcome::Ok, Value::Object(fields))
        }
        Err(error) => (
            Outcome::Error(error.to_string()),
            json!({ "ok": false, "error": error }),
        ),
    };
    shared.record(Call {
        method,
        token,
        params: Value::Object(params),
        outcome,
    });
    json_response(StatusCode::OK, &body)
}

/// The token check, as Slack answers it: no token is `not_authed`, an unknown one
/// `invalid_auth`, a known one of the wrong kind (an app token on a bot method or the
/// reverse) `not_allowed_token_type`.
fn authorize(shared: &Shared, method: &str, token: Option<&str>) -> Result<(), &'static str> {
    let Some(token) = token else {
        return Err("not_authed");
    };
    let wanted = if method == "apps.connections.open" {
        TokenKind::App
    } else {
        TokenKind::Bot
    };
    match shared.lock().token_kind(token) {
        None => Err("invalid_auth"),
        Some(kind) if kind != wanted => Err("not_allowed_token_type"),
        Some(_) => Ok(()),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .map(|token| token.trim().to_string())
}

/// The query string, then the body according to its content type.
fn parse_params(
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, &'static str> {
    let mut params = Map::new();
    if let Some(query) = uri.query() {
        merge_form(&mut params, query.as_bytes());
    }
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            _ => return Err("invalid_json"),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.is_empty()
    {
        merge_form(&mut params, body);
    } else {
        return Err("invalid_form_data");
    }
    Ok(params)
}

fn merge_form(params: &mut Map<String, Value>, form: &[u8]) {
    for (key, value) in form_urlencoded::parse(form) {
        let value = if JSON_ENCODED_FORM_FIELDS.contains(&key.as_ref()) {
            serde_json::from_str(&value).unwrap_or(Value::String(value.into_owned()))
        } else {
            Value::String(value.into_owned())
        };
        params.insert(key.into_owned(), value);
    }
}

fn rate_limited(retry_after_secs: u64) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({ "ok": false, "error": "ratelimited" }),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(retry_after_secs),
    );
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}
