//! Local stand-ins for the receivers of release markers, on one axum server on 127.0.0.1:0,
//! speaking the real wire formats:
//!
//! - Grafana's annotations HTTP API (shapes from Grafana's documentation, "Annotations HTTP
//!   API", grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/annotations):
//!   `POST /api/annotations` answers `{"message":"Annotation added","id":N}`,
//!   `PATCH /api/annotations/{id}` answers `{"message":"Annotation patched"}`, and
//!   `GET /api/annotations?tags=a&tags=b&limit=N` lists the annotations that have every tag.
//!   Each wants `Authorization: Bearer <token>`.
//! - PagerDuty's Events API v2 change events (PagerDuty's developer documentation, "Send
//!   Change Events to the PagerDuty Events API"): `POST /v2/change/enqueue` answers `202
//!   {"status":"success","message":"Change event processed"}`, and 400 without a routing key.
//! - A webhook receiver at `POST /hooks/{name}` that checks dobrobot's signature itself
//!   (HMAC-SHA256 of `v1:<timestamp>:<body>`, a timestamp within five minutes) and answers 401
//!   to a bad one.
//!
//! Each records what it accepted, and can be told to fail its next requests (500, or 429 with
//! `Retry-After`) or to answer slowly. The server stops when the fake is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use dobrobot::config::{GrafanaSink, PagerDutySink, SinksConfig, WebhookSink};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const GRAFANA_TOKEN: &str = "glsa_test_token";
pub const ROUTING_KEY: &str = "R0UTINGKEY0000000000000000000000";
pub const WEBHOOK_SECRET: &str = "whsec-test-secret";
/// The env var the test config names for the webhook's secret.
pub const WEBHOOK_SECRET_ENV: &str = "DOBROBOT_TEST_WEBHOOK_SECRET";

/// Which receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Receiver {
    Grafana,
    PagerDuty,
    Webhook,
}

/// How a scripted failure answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    Status500,
    /// 400 with a JSON message: not worth retrying.
    BadRequest,
    /// 429 with `Retry-After: <seconds>`.
    TooMany(u64),
}

/// A request a receiver accepted (or refused because it was scripted to).
#[derive(Debug, Clone)]
pub struct Received {
    pub receiver: Receiver,
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
    /// The answer was a scripted failure.
    pub failed: bool,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    failures: HashMap<Receiver, Vec<Fail>>,
    delay: HashMap<Receiver, Duration>,
    /// Grafana's annotations by id.
    annotations: Vec<Value>,
    /// Webhook requests refused for a bad signature.
    bad_signatures: usize,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the request (so a test sees it arrive), waits the receiver's delay, then
    /// answers its scripted failure if one is due.
    async fn arrive(
        &self,
        receiver: Receiver,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Response> {
        let (fail, delay) = {
            let mut inner = self.lock();
            let fail = inner
                .failures
                .get_mut(&receiver)
                .and_then(|f| (!f.is_empty()).then(|| f.remove(0)));
            inner.received.push(Received {
                receiver,
                method: method.to_string(),
                path: path.to_string(),
                headers: headers.clone(),
                body: serde_json::from_slice(body).unwrap_or(Value::Null),
                at: Instant::now(),
                failed: fail.is_some(),
            });
            (fail, inner.delay.get(&receiver).copied())
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        fail.map(|fail| match fail {
            Fail::BadRequest => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"message": "bad request: unknown field"})),
            )
                .into_response(),
            Fail::Status500 => (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"message": "internal server error"})),
            )
                .into_response(),
            Fail::TooMany(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", seconds.to_string())],
                axum::Json(json!({"message": "rate limited"})),
            )
                .into_response(),
        })
    }
}

pub struct FakeSinks {
    shared: Shared,
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSinks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSinks {
    pub async fn start() -> FakeSinks {
        let shared = Shared::default();
        let router = Router::new()
            .route("/api/annotations", post(grafana_post).get(grafana_find))
            .route("/api/annotations/{id}", patch(grafana_patch))
            .route("/v2/change/enqueue", post(pagerduty))
            .route("/hooks/{name}", post(webhook))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake sinks");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeSinks {
            shared,
            addr,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `[sinks]` pointing at this fake: Grafana, PagerDuty and one webhook `ops`, with their
    /// secrets set as the environment would (the secrets are `#[serde(skip)]`).
    pub fn config(&self) -> SinksConfig {
        SinksConfig {
            grafana: Some(GrafanaSink {
                url: self.url(),
                dashboard_uid: Some("releases".into()),
                token: Some(GRAFANA_TOKEN.into()),
            }),
            pagerduty: Some(PagerDutySink {
                url: self.url(),
                routing_key: Some(ROUTING_KEY.into()),
            }),
            webhooks: vec![WebhookSink {
                name: "ops".into(),
                url: format!("{}/hooks/ops", self.url()),
                secret_env: WEBHOOK_SECRET_ENV.into(),
                secret: Some(WEBHOOK_SECRET.into()),
            }],
            attempts: 3,
            lease: "2s".into(),
            timeout: "2s".into(),
            retry_delay: "1s".into(),
        }
    }

    /// The next `n` requests to `receiver` answer `fail`.
    pub fn fail_next(&self, receiver: Receiver, n: usize, fail: Fail) {
        self.shared
            .lock()
            .failures
            .entry(receiver)
            .or_default()
            .extend(std::iter::repeat_n(fail, n));
    }

    /// `receiver` answers each request after `delay`.
    pub fn slow(&self, receiver: Receiver, delay: Duration) {
        self.shared.lock().delay.insert(receiver, delay);
    }

    /// Every request `receiver` got, in order (scripted failures included).
    pub fn received(&self, receiver: Receiver) -> Vec<Received> {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|r| r.receiver == receiver)
            .cloned()
            .collect()
    }

    /// The requests `receiver` accepted.
    pub fn accepted(&self, receiver: Receiver) -> Vec<Received> {
        self.received(receiver)
            .into_iter()
            .filter(|r| !r.failed)
            .collect()
    }

    /// Grafana's annotations as they stand.
    pub fn annotations(&self) -> Vec<Value> {
        self.shared.lock().annotations.clone()
    }

    pub fn bad_signatures(&self) -> usize {
        self.shared.lock().bad_signatures
    }

    /// Waits until `check` holds of this fake (10 s at most).
    pub async fn wait(&self, what: &str, check: impl Fn(&FakeSinks) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the fake sinks never saw {what}");
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"message": "Unauthorized"})),
    )
        .into_response()
}

async fn grafana_post(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, GRAFANA_TOKEN) {
        return unauthorized();
    }
    if let Some(failed) = shared
        .arrive(
            Receiver::Grafana,
            "POST",
            "/api/annotations",
            &headers,
            &body,
        )
        .await
    {
        return failed;
    }
    let Ok(mut annotation) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad JSON").into_response();
    };
    let mut inner = shared.lock();
    let id = inner.annotations.len() as i64 + 1;
    annotation["id"] = json!(id);
    inner.annotations.push(annotation);
    axum::Json(json!({"message": "Annotation added", "id": id})).into_response()
}

async fn grafana_patch(
    State(shared): State<Shared>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, GRAFANA_TOKEN) {
        return unauthorized();
    }
    let path = format!("/api/annotations/{id}");
    if let Some(failed) = shared
        .arrive(Receiver::Grafana, "PATCH", &path, &headers, &body)
        .await
    {
        return failed;
    }
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad JSON").into_response();
    };
    let mut inner = shared.lock();
    let Some(annotation) = inner.annotations.iter_mut().find(|a| a["id"] == id) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Could not find annotation to update"})),
        )
            .into_response();
    };
    for (key, value) in changes {
        annotation[key] = value;
    }
    axum::Json(json!({"message": "Annotation patched"})).into_response()
}

async fn grafana_find(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, GRAFANA_TOKEN) {
        return unauthorized();
    }
    let query = query.unwrap_or_default();
    if let Some(failed) = shared
        .arrive(Receiver::Grafana, "GET", "/api/annotations", &headers, b"")
        .await
    {
        return failed;
    }
    let mut tags = Vec::new();
    let mut limit = 100usize;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "tags" => tags.push(value.to_string()),
            "limit" => limit = value.parse().unwrap_or(100),
            _ => {}
        }
    }
    let inner = shared.lock();
    let found: Vec<Value> = inner
        .annotations
        .iter()
        .filter(|a| {
            tags.iter().all(|t| {
                a["tags"]
                    .as_array()
                    .is_some_and(|ts| ts.contains(&json!(t)))
            })
        })
        .take(limit)
        .cloned()
        .collect();
    axum::Json(found).into_response()
}

async fn pagerduty(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if parsed["routing_key"] != ROUTING_KEY {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'routing_key' is invalid"]})),
        )
            .into_response();
    }
    if let Some(failed) = shared
        .arrive(
            Receiver::PagerDuty,
            "POST",
            "/v2/change/enqueue",
            &headers,
            &body,
        )
        .await
    {
        return failed;
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "success", "message": "Change event processed"})),
    )
        .into_response()
}

async fn webhook(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !signed(&headers, &body) {
        shared.lock().bad_signatures += 1;
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let path = format!("/hooks/{name}");
    if let Some(failed) = shared
        .arrive(Receiver::Webhook, "POST", &path, &headers, &body)
        .await
    {
        return failed;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The receiver's check, written from the documented scheme (not with dobrobot's code).
pub fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (
        header("x-dobrobot-request-timestamp"),
        header("x-dobrobot-signature"),
    ) else {
        return false;
    };
    let Ok(sent) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - sent).abs() > 300 {
        return false;
    }
    let Some(hex_signature) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("any key");
    mac.update(format!("v1:{timestamp}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}
