//! A fake Jira on 127.0.0.1:0 that answers `GET /rest/api/{2,3}/issue/{key}` the way Jira does,
//! scripted per issue key: found, not found, 401, 403, 429 with `Retry-After`, a 503, or slow.
//!
//! The shapes follow Atlassian's published REST API examples (developer.atlassian.com, "The Jira
//! Cloud platform REST API": the issue of "Get issue" with `id`, `key`, `self` and `fields`; the
//! status of "Get status" with its `statusCategory`; the user, version and issue type
//! examples), and the error collection `{"errorMessages": [...], "errors": {}}`, whose 404 text
//! for an issue is Jira's own. Like Jira, it returns only the fields asked for in `fields`.
//!
//! It checks what a real Jira would reject: the credentials (basic auth on Cloud, a bearer token
//! on Server / Data Center; anything else is a 401) and the REST API version of the path. It
//! records every request, so a test can count them (the cache) and read the `fields` asked for.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const EMAIL: &str = "dobrobot@example.com";
pub const API_TOKEN: &str = "ATATT-test-api-token";
pub const PAT: &str = "server-personal-access-token";

/// Which Jira the fake plays, and so which path and credentials it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// REST API 3, basic auth with `EMAIL` and `API_TOKEN`.
    Cloud,
    /// REST API 2, `Authorization: Bearer PAT`.
    Server,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Found(IssueSpec),
    NotFound,
    Unauthorized,
    Forbidden,
    /// 429 with `Retry-After: seconds`.
    RateLimited {
        retry_after: u64,
    },
    Unavailable,
    /// Sleeps, then gives the reply.
    Slow(Duration, Box<Reply>),
}

/// The fields of an issue, as a test writes them.
#[derive(Debug, Clone)]
pub struct IssueSpec {
    pub summary: String,
    pub status: String,
    /// The status category's key (`new`, `indeterminate`, `done`).
    pub category: String,
    pub issue_type: String,
    pub fix_versions: Vec<String>,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
}

impl IssueSpec {
    /// An issue ready for release: a story, done, with a fix version, an assignee and the
    /// `release` label.
    pub fn ready(summary: &str) -> IssueSpec {
        IssueSpec {
            summary: summary.to_string(),
            status: "Ready for release".to_string(),
            category: "indeterminate".to_string(),
            issue_type: "Story".to_string(),
            fix_versions: vec!["2026.12".to_string()],
            assignee: Some("Mia Krystof".to_string()),
            labels: vec!["release".to_string()],
        }
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub key: String,
    /// The `fields` query parameter, as sent.
    pub fields: Option<String>,
    pub authorized: bool,
}

#[derive(Default)]
struct Script {
    /// Replies per key; the last one repeats.
    replies: HashMap<String, VecDeque<Reply>>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
struct Shared {
    flavour: Flavour,
    base: String,
    script: Arc<Mutex<Script>>,
}

pub struct FakeJira {
    addr: SocketAddr,
    shared: Shared,
    server: JoinHandle<()>,
}

impl FakeJira {
    pub async fn start(flavour: Flavour) -> FakeJira {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 for the fake Jira");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Shared {
            flavour,
            base: format!("http://{addr}"),
            script: Arc::default(),
        };
        let router = Router::new()
            .route("/rest/api/{version}/issue/{key}", get(issue))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the fake Jira serves");
        });
        FakeJira {
            addr,
            shared,
            server,
        }
    }

    /// The site's address, for `[tracker] base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts the replies for `key`, in order; the last one repeats.
    pub fn script(&self, key: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut script = self.shared.script.lock().unwrap();
        script
            .replies
            .insert(key.to_string(), replies.into_iter().collect());
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.script.lock().unwrap().seen.clone()
    }

    /// How many requests asked about `key`.
    pub fn requests_for(&self, key: &str) -> usize {
        self.seen().iter().filter(|s| s.key == key).count()
    }
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn issue(
    State(shared): State<Shared>,
    Path((version, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fields = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "fields")
            .map(|(_, value)| value.into_owned())
    });
    let authorized = authorized(shared.flavour, &headers);
    let reply = {
        let mut script = shared.script.lock().unwrap();
        script.seen.push(Seen {
            path: format!("/rest/api/{version}/issue/{key}"),
            key: key.clone(),
            fields: fields.clone(),
            authorized,
        });
        let replies = script.replies.entry(key.clone()).or_default();
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    };
    let wanted_version = match shared.flavour {
        Flavour::Cloud => "3",
        Flavour::Server => "2",
    };
    if version != wanted_version {
        return errors(
            StatusCode::NOT_FOUND,
            "null for uri: this Jira has no such API version",
        );
    }
    if !authorized {
        return errors(
            StatusCode::UNAUTHORIZED,
            "You are not authenticated. Authentication required to perform this operation.",
        );
    }
    answer(
        &shared,
        &key,
        fields.as_deref(),
        reply.unwrap_or(Reply::NotFound),
    )
    .await
}

async fn answer(shared: &Shared, key: &str, fields: Option<&str>, reply: Reply) -> Response {
    let mut reply = reply;
    while let Reply::Slow(delay, then) = reply {
        tokio::time::sleep(delay).await;
        reply = *then;
    }
    match reply {
        Reply::Found(spec) => {
            let body = issue_json(&shared.base, key, &spec, shared.flavour, fields);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        // Jira's own words for a missing issue (and for one these credentials may not see).
        Reply::NotFound => errors(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        ),
        Reply::Unauthorized => errors(
            StatusCode::UNAUTHORIZED,
            "You are not authenticated. Authentication required to perform this operation.",
        ),
        Reply::Forbidden => errors(
            StatusCode::FORBIDDEN,
            "You do not have permission to access this resource.",
        ),
        Reply::RateLimited { retry_after } => {
            let mut response = errors(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded.");
            response.headers_mut().insert(
                header::RETRY_AFTER,
                retry_after.to_string().parse().unwrap(),
            );
            response
        }
        Reply::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
        }
        Reply::Slow(..) => unreachable!("unwound above"),
    }
}

fn authorized(flavour: Flavour, headers: &HeaderMap) -> bool {
    use base64::Engine;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    match flavour {
        Flavour::Cloud => {
            let pair = format!("{EMAIL}:{API_TOKEN}");
            value
                == format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
        }
        Flavour::Server => value == format!("Bearer {PAT}"),
    }
}

/// Jira's error collection.
fn errors(status: StatusCode, message: &str) -> Response {
    let body = json!({"errorMessages": [message], "errors": {}});
    (status, axum::Json(body)).into_response()
}

/// The issue in the shape of Atlassian's "Get issue" example, with the fields asked for only.
fn issue_json(
    base: &str,
    key: &str,
    spec: &IssueSpec,
    flavour: Flavour,
    fields: Option<&str>,
) -> Value {
    let api = match flavour {
        Flavour::Cloud => format!("{base}/rest/api/3"),
        Flavour::Server => format!("{base}/rest/api/2"),
    };
    let (category_id, category_color, category_name) = match spec.category.as_str() {
        "new" => (2, "blue-gray", "To Do"),
        "done" => (3, "green", "Done"),
        _ => (4, "yellow", "In Progress"),
    };
    let all = json!({
        "summary": spec.summary,
        "status": {
            "self": format!("{api}/status/10000"),
            "description": "",
            "iconUrl": format!("{base}/images/icons/statuses/generic.png"),
            "name": spec.status,
            "id": "10000",
            "statusCategory": {
                "self": format!("{api}/statuscategory/{category_id}"),
                "id": category_id,
                "key": spec.category,
                "colorName": category_color,
                "name": category_name
            }
        },
        "issuetype": {
            "self": format!("{api}/issuetype/10001"),
            "id": "10001",
            "description": "Functionality or a feature expressed as a user goal.",
            "iconUrl": format!("{base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/10315?size=medium"),
            "name": spec.issue_type,
            "subtask": false,
            "avatarId": 10315,
            "hierarchyLevel": 0
        },
        "fixVersions": spec.fix_versions.iter().enumerate().map(|(i, name)| json!({
            "self": format!("{api}/version/{}", 10000 + i),
            "id": (10000 + i).to_string(),
            "description": "An excellent version",
            "name": name,
            "archived": false,
            "released": false,
            "releaseDate": "2026-12-15"
        })).collect::<Vec<_>>(),
        "assignee": spec.assignee.as_ref().map(|name| json!({
            "self": format!("{api}/user?accountId=5b10a2844c20165700ede21g"),
            "accountId": "5b10a2844c20165700ede21g",
            "avatarUrls": {
                "48x48": "https://avatar-management--avatars.server-location.prod.public.atl-paas.net/initials/MK-5.png?size=48&s=48"
            },
            "displayName": name,
            "active": true,
            "timeZone": "Australia/Sydney",
            "accountType": "atlassian"
        })),
        "labels": spec.labels
    });
    let wanted: Vec<&str> = fields.map(|f| f.split(',').collect()).unwrap_or_default();
    let mut chosen = serde_json::Map::new();
    for (name, value) in all.as_object().expect("an object") {
        // No `fields` parameter: Jira sends every navigable field.
        if fields.is_none() || wanted.contains(&name.as_str()) {
            chosen.insert(name.clone(), value.clone());
        }
    }
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": "10002",
        "self": format!("{api}/issue/10002"),
        "key": key,
        "fields": chosen
    })
}
