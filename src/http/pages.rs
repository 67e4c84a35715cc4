//! The pages people look at, under the same access gate as the API: the timeline at `/` (a
//! page that asks the read API and follows the ledger through `/live`), and `/report`, the
//! delivery figures drawn on the server. Everything a page uses is compiled into the binary;
//! nothing is fetched from elsewhere. A page's error is a page too, saying what was wrong.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, Utc};
use futures::{Stream, StreamExt};
use serde::Serialize;

use super::api::{ReadApi, report_query};
use super::problem::Problem;
use crate::follower::Progress;
use crate::projections::AsOf;
use crate::read::params::{ParamError, Params};
use crate::render::escape_html;

/// The longest range the timeline shows at once.
const MAX_RANGE_DAYS: i64 = 31;

const TIMELINE_JS: &str = include_str!("assets/timeline.js");
const TIMELINE_CSS: &str = include_str!("assets/timeline.css");

pub fn routes(api: Arc<ReadApi>) -> Router {
    Router::new()
        .route("/", get(timeline))
        .route("/live", get(live))
        .route("/report", get(report))
        .route("/what-if", get(what_if_form).post(what_if))
        .route("/assets/timeline.js", get(script))
        .route("/assets/timeline.css", get(style))
        .with_state(api)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", TIMELINE_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", TIMELINE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// What the timeline shows, resolved from its URL by the server (so a permalink's `2h ago` or
/// `2026-11-25T03:12Z` is read once, the way the API reads it), handed to the page's script.
#[derive(Debug, Serialize)]
pub struct Setup {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// No `until` and no `at`: the range ends now and follows the ledger.
    pub live: bool,
    /// Incident mode: the moment it broke, and how far back to look.
    pub at: Option<DateTime<Utc>>,
    pub window_secs: i64,
    pub filters: Filters,
    /// Service lanes, those of a conflict group together.
    pub lanes: Vec<Lane>,
    pub tracker_url: Option<String>,
    /// On `/what-if`: the differences under the proposed rules, marked on the lanes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_if: Option<WhatIfView>,
}

/// A what-if's answer as the page shows it.
#[derive(Debug, Serialize)]
pub struct WhatIfView {
    pub commands: usize,
    pub differences: Vec<DifferenceView>,
}

#[derive(Debug, Serialize)]
pub struct DifferenceView {
    pub at: DateTime<Utc>,
    pub ticket: Option<String>,
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Filters {
    pub service: Option<String>,
    pub ticket: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Lane {
    pub service: String,
    pub group: Option<String>,
}

/// The query without the form's empty fields, which are not parameters.
fn without_empty(query: Option<String>) -> Option<String> {
    query.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(_, v)| !v.trim().is_empty())
            .fold(
                form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(&k, &v);
                    s
                },
            )
            .finish()
    })
}

fn bad(parameter: &str, reason: impl Into<String>) -> Problem {
    Problem::from(ParamError {
        parameter: parameter.into(),
        reason: reason.into(),
    })
}

fn setup(api: &ReadApi, query: Option<String>) -> Result<Setup, Problem> {
    let now = Utc::now();
    let params = Params::parse(
        without_empty(query).as_deref(),
        &[
            "since", "until", "at", "window", "service", "ticket", "actor", "outcome",
        ],
        &[],
        now,
    )?;
    let window = params.window()?.unwrap_or(Duration::hours(2));
    if window <= Duration::zero() {
        return Err(bad("window", "a window is longer than nothing"));
    }
    let at = match params.at()? {
        None => None,
        Some(AsOf::Time(t)) => Some(t),
        Some(_) => {
            return Err(bad("at", "the moment it broke is a time, not a revision"));
        }
    };
    let (since, until) = (params.time("since")?, params.time("until")?);
    let (since, until, live) = match at {
        // The window before the moment, and a little after it.
        Some(at) => (
            since.unwrap_or(at - window - window / 4),
            until.unwrap_or(at + window / 4),
            false,
        ),
        None => {
            let end = until.unwrap_or(now);
            (
                since.unwrap_or(end - Duration::hours(24)),
                end,
                until.is_none(),
            )
        }
    };
    if until <= since {
        return Err(bad(
            "since",
            "the range is empty: `since` is not before `until`",
        ));
    }
    if until - since > Duration::days(MAX_RANGE_DAYS) {
        return Err(bad(
            "since",
            format!("at most {MAX_RANGE_DAYS} days at a time; the report covers longer ranges"),
        ));
    }
    Ok(Setup {
        since,
        until,
        live,
        at,
        window_secs: window.num_seconds(),
        filters: Filters {
            service: params.service()?.map(|s| s.to_string()),
            ticket: params.ticket()?.map(|t| t.to_string()),
            actor: params.actor()?.map(|a| a.to_string()),
            outcome: params.outcome()?.map(|o| o.name().to_string()),
        },
        lanes: lanes(api),
        tracker_url: api.tracker_url.clone(),
        what_if: None,
    })
}

/// The configured services, those of each conflict group together (a service in two groups
/// under the first), then the rest by name.
fn lanes(api: &ReadApi) -> Vec<Lane> {
    let policy = api.ledger.policy();
    let mut lanes: Vec<Lane> = Vec::new();
    let mut placed = BTreeSet::new();
    for group in &policy.conflict_groups {
        for service in &group.services {
            if placed.insert(service.to_string()) {
                lanes.push(Lane {
                    service: service.to_string(),
                    group: Some(group.name.to_string()),
                });
            }
        }
    }
    let rest: Vec<String> = policy
        .services()
        .iter()
        .map(ToString::to_string)
        .filter(|s| !placed.contains(s))
        .collect();
    lanes.extend(rest.into_iter().map(|service| Lane {
        service,
        group: None,
    }));
    lanes
}

/// The timeline: the page's frame and what it shows; its script draws the rest from the API.
async fn timeline(State(api): State<Arc<ReadApi>>, RawQuery(query): RawQuery) -> Response {
    match setup(&api, query) {
        Ok(setup) => Html(crate::render::timeline::page(&setup)).into_response(),
        Err(problem) => error_page(&problem, "/"),
    }
}

/// Server-sent events for the pages: `ledger` with `{"revision", "caught_up"}` at once, and
/// again each time the read models move on (the follower's progress), so an open page shows a
/// command moments after it is recorded.
async fn live(
    State(api): State<Arc<ReadApi>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    fn event(progress: &Progress) -> Result<Event, Infallible> {
        let data = serde_json::json!({
            "revision": progress.revision,
            "caught_up": progress.caught_up,
        });
        Ok(Event::default().event("ledger").data(data.to_string()))
    }
    let changes = api.followed.changes();
    let first = event(&changes.borrow());
    let rest = futures::stream::unfold(changes, |mut changes| async move {
        changes.changed().await.ok()?;
        let progress = *changes.borrow_and_update();
        Some((event(&progress), changes))
    });
    Sse::new(futures::stream::once(async move { first }).chain(rest))
        .keep_alive(KeepAlive::default())
}

/// The report page: the form's fields are the API's parameters, so a report is a link.
async fn report(State(api): State<Arc<ReadApi>>, RawQuery(query): RawQuery) -> Response {
    let answer = async {
        let query = without_empty(query);
        let params = Params::parse(
            query.as_deref(),
            &["since", "until", "service", "per"],
            &[],
            Utc::now(),
        )?;
        let query = report_query(&params)?;
        let rows = api.report(query.clone()).await?;
        let policy = api.ledger.policy();
        let services: BTreeSet<String> = policy
            .services_by_project
            .values()
            .flatten()
            .chain(rows.iter().filter_map(|r| r.service.as_ref()))
            .map(ToString::to_string)
            .collect();
        let services: Vec<String> = services.into_iter().collect();
        Ok::<_, Problem>(crate::render::report::page(&query, &rows, &services))
    };
    match answer.await {
        Ok(page) => Html(page).into_response(),
        Err(problem) => error_page(&problem, "/report"),
    }
}

/// `/what-if`: a form for a proposed config and a range; it posts to itself.
async fn what_if_form() -> Response {
    Html(crate::render::timeline::what_if_form("", "30d", "")).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct WhatIfForm {
    /// The proposed config file's text (TOML).
    policy: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// The commands of the range decided again under the posted config's rules, shown on the
/// timeline with each difference marked and listed. Writes nothing.
async fn what_if(
    State(api): State<Arc<ReadApi>>,
    axum::Form(form): axum::Form<WhatIfForm>,
) -> Response {
    let answer = async {
        let config: crate::config::Config = toml::from_str(&form.policy)
            .map_err(|e| bad("policy", format!("not a valid config: {e}")))?;
        let proposed = config
            .policy()
            .map_err(|e| bad("policy", e.to_string()))?
            .with_members(&api.ledger.policy().user_groups);
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            let since = form.since.trim();
            query.append_pair("since", if since.is_empty() { "30d" } else { since });
            if !form.until.trim().is_empty() {
                query.append_pair("until", form.until.trim());
            }
            query.finish()
        };
        let mut setup = setup(&api, Some(query))?;
        setup.live = false;
        let until = (setup.until < Utc::now()).then_some(setup.until);
        let answer = crate::replay::what_if(&api.store, &api.stream, &proposed, setup.since, until)
            .await
            .map_err(|e| Problem::unavailable(e.to_string()))?;
        let renderer = crate::render::Renderer::plain(api.tracker_url.clone());
        setup.what_if = Some(WhatIfView {
            commands: answer.commands,
            differences: answer
                .differences
                .iter()
                .map(|d| DifferenceView {
                    at: d.at(),
                    ticket: d.ticket().map(ToString::to_string),
                    kind: d.kind(),
                    detail: crate::render::whatif::detail(d, &renderer),
                })
                .collect(),
        });
        Ok::<_, Problem>(setup)
    };
    match answer.await {
        Ok(setup) => Html(crate::render::timeline::page(&setup)).into_response(),
        Err(problem) => error_page(&problem, "/what-if"),
    }
}

fn error_page(problem: &Problem, back: &str) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut detail = escape_html(&problem.detail);
    for param in &problem.invalid_params {
        detail.push_str(&format!(
            "<br><code>{}</code>: {}",
            escape_html(&param.name),
            escape_html(&param.reason)
        ));
    }
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p class=\"problem\">{detail}</p><p><a href=\"{back}\">Back</a></p></body></html>",
        title = escape_html(&problem.title),
    );
    (status, Html(page)).into_response()
}
