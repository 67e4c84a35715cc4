//! The read API under `/api/v1/`: the CLI's read commands over HTTP, answered from the
//! follower's read models (or, for a question `at` a past point, from the ledger folded to it).
//!
//! Rows have the same fields as the CLI's `--format json` (`crate::read::rows`). Listings are
//! pages: `{"items": [...], "next_cursor": N, "next": URL}` and a `Link: <URL>; rel="next"`
//! header while more follow. `Accept: text/csv` or `application/x-ndjson` streams the whole
//! listing instead (from the cursor, up to `limit` when one is given), a chunk of rows at a
//! time, so a year of history is never held in memory to be sent.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::{Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use crate::domain::QueueItem;
use crate::domain::{HistoryFilter, Policy, ServiceName};
use crate::follower::{Followed, ReadModels};
use crate::ledger::Ledger;
use crate::models::{ModelsError, Reader, StoredModels};
use crate::projections::AsOf;
use crate::projections::live::LockView;
use crate::projections::{Deployment, HistoryEntry};
use crate::read::params::Params;
use crate::read::report::{Figures, Per, ReportQuery};
use crate::read::rows::Row;
use crate::read::{self, DeploymentFilter, FreezeView, Page, Replay};
use crate::store::{Direction, EventStore, ReadFrom};

/// Rows per chunk of a streamed export.
const EXPORT_CHUNK: usize = 1000;

/// A page of a listing, as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<u64>,
    /// The next page's path and query (also in the `Link` header); `null` on the last.
    pub next: Option<String>,
}

/// One event as the ledger stores it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredEvent {
    pub revision: u64,
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's data, as `schemas/<type>.json` describes it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Who, from where, the command as typed, when, and the hash chain.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// When the store wrote it (the store's clock).
    pub created: chrono::DateTime<Utc>,
}

/// What `verify` found.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// Revisions contiguous, the hash chain intact, every event valid.
    pub ok: bool,
    pub stream: String,
    /// How many events were checked (when `ok`).
    pub events: Option<u64>,
    /// The hash of the last event (when `ok`).
    pub last_hash: Option<String>,
    /// The first bad event (unless `ok`).
    pub bad_event: Option<BadEvent>,
    /// A snapshot of the writer's state that differs from the fold (unless `ok`).
    pub bad_snapshot: Option<String>,
    /// The checkpoint at which the persisted read models equal a fresh fold (when `ok`).
    pub models_revision: Option<u64>,
    /// A persisted read model that differs from a fresh fold (unless `ok`).
    pub bad_model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BadEvent {
    pub revision: u64,
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub problem: String,
}

/// What the API reads.
#[derive(Clone)]
pub struct ReadApi {
    pub followed: Followed,
    pub ledger: Ledger,
    pub store: Arc<dyn EventStore>,
    pub stream: String,
    /// Prefix that turns a ticket key into a link (`tracker_url`), for the pages.
    pub tracker_url: Option<String>,
}

/// The API's OpenAPI document, generated from the handlers' annotations and the rows' types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "dobrobot read API",
        description = "Who released what, when: the release ledger's read models over HTTP. \
                       Every listing is paged by a cursor (a ledger revision) and exports as CSV \
                       or NDJSON; errors are RFC 9457 problems. Pipelines record commands \
                       through `POST /api/v1/commands` with a pipeline token.",
    ),
    paths(queue, locks, freeze, deployments, history, who, suspects, replay, report, event, verify,
          super::commands::command, super::health::health, super::health::ready),
    tags((name = "ledger", description = "The ledger's read models"),
         (name = "pipelines", description = "Commands from CI/CD jobs"),
         (name = "service", description = "The process"))
)]
pub struct ApiDoc;

pub fn routes(api: ReadApi) -> Router {
    Router::new()
        .route("/api/v1/queue", get(queue))
        .route("/api/v1/locks", get(locks))
        .route("/api/v1/freeze", get(freeze))
        .route("/api/v1/deployments", get(deployments))
        .route("/api/v1/history", get(history))
        .route("/api/v1/who/{service}", get(who))
        .route("/api/v1/suspects", get(suspects))
        .route("/api/v1/replay", get(replay))
        .route("/api/v1/report", get(report))
        .route("/api/v1/events/{revision}", get(event))
        .route("/api/v1/verify", get(verify))
        .with_state(Arc::new(api))
}

type Api = State<Arc<ReadApi>>;

/// The models a question reads: the follower's, or the ledger folded to a past point.
enum Models {
    Live(Followed),
    AsOf(Arc<ReadModels>),
}

impl Models {
    fn read<R>(&self, f: impl FnOnce(&ReadModels) -> R) -> R {
        match self {
            Models::Live(followed) => followed.read(f),
            Models::AsOf(models) => f(models),
        }
    }
}

impl ReadApi {
    fn policy(&self) -> Arc<Policy> {
        self.ledger.policy()
    }

    /// The live state for a question as of `at` (now when `None`): from the follower, or from
    /// the latest snapshot before `at` and the events after it.
    async fn live(&self, at: Option<AsOf>) -> Result<Models, Problem> {
        match at {
            None | Some(AsOf::Latest) => {
                self.caught_up()?;
                Ok(Models::Live(self.followed.clone()))
            }
            Some(as_of) => read::live_as_of(&self.store, &self.stream, as_of)
                .await
                .map(|live| {
                    Models::AsOf(Arc::new(ReadModels {
                        live,
                        ..ReadModels::default()
                    }))
                })
                .map_err(|error| Problem::unavailable(error.to_string())),
        }
    }

    /// The follower has read the whole ledger once, so the models answer for it.
    fn caught_up(&self) -> Result<(), Problem> {
        let progress = self.followed.progress();
        if progress.failed {
            return Err(Problem::unavailable(
                "the ledger cannot be read: the follower stopped",
            ));
        }
        if !progress.caught_up {
            return Err(Problem::unavailable(format!(
                "the read models are catching up with the ledger (at revision {})",
                progress.revision.map_or("none".into(), |r| r.to_string())
            )));
        }
        Ok(())
    }
}

fn params(query: &Option<String>, allowed: &[&str]) -> Result<Params, Problem> {
    Params::parse(query.as_deref(), allowed, &[], Utc::now()).map_err(Problem::from)
}

/// How a listing is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Export {
    Csv,
    Ndjson,
}

impl Export {
    /// Rows in the export's form, the CSV header first when `first`.
    fn encode<T: Row>(self, rows: &[T], first: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        match self {
            Export::Csv => {
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut bytes);
                if first {
                    let _ = csv.write_record(T::HEADERS);
                }
                for row in rows {
                    let _ = csv.write_record(row.cells());
                }
                let _ = csv.flush();
            }
            Export::Ndjson => {
                for row in rows {
                    if serde_json::to_writer(&mut bytes, row).is_ok() {
                        bytes.push(b'\n');
                    }
                }
            }
        }
        bytes
    }

    fn respond(self, body: Body) -> Response {
        let content_type = match self {
            Export::Csv => "text/csv; charset=utf-8",
            Export::Ndjson => "application/x-ndjson",
        };
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}

fn export_of(headers: &HeaderMap) -> Option<Export> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types.contains(&"text/csv") {
        Some(Export::Csv)
    } else if types.contains(&"application/x-ndjson") {
        Some(Export::Ndjson)
    } else {
        None
    }
}

/// A page of a listing read from the persisted models: `(reader, cursor, limit, upto)`, where
/// `upto` is the last revision of a question as of a point.
type Query<T> = Arc<
    dyn Fn(&Reader, Option<u64>, usize, Option<u64>) -> Result<Page<T>, ModelsError> + Send + Sync,
>;

/// A listing, as a page of JSON or as a streamed export.
struct Listing<T> {
    models: Arc<StoredModels>,
    query: Query<T>,
    /// As of this point of the ledger (the latest when `None`).
    at: Option<AsOf>,
    cursor: Option<u64>,
    limit: usize,
    /// The caller named a limit (an export without one is the whole listing).
    limited: bool,
}

impl<T: Row + Send + Sync + 'static> Listing<T> {
    async fn respond(self, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
        Ok(match export_of(headers) {
            Some(export) => self.export(export),
            None => self.page(uri).await?,
        })
    }

    /// One page from the cursor, read on a blocking thread.
    async fn read(&self, cursor: Option<u64>, limit: usize) -> Result<Page<T>, Problem> {
        let (models, query, at) = (self.models.clone(), self.query.clone(), self.at);
        tokio::task::spawn_blocking(move || read_page(&models, &query, at, cursor, limit))
            .await
            .map_err(|error| Problem::unavailable(error.to_string()))?
    }

    /// A page answered where the request is, as its JSON is written: a page is bounded work
    /// (at most `MAX_LIMIT` rows read from an index, on a pooled connection that never waits
    /// for a lock: the models are in WAL mode, where readers do not block), and a hand-over
    /// to a blocking thread and back would cost more than the query.
    async fn page(self, uri: &Uri) -> Result<Response, Problem> {
        let page = read_page(&self.models, &self.query, self.at, self.cursor, self.limit)?;
        let next = page.next_cursor.map(|cursor| with_cursor(uri, cursor));
        let link = next
            .as_ref()
            .and_then(|next| HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")).ok());
        let body = PageOf {
            items: page.items,
            next_cursor: page.next_cursor,
            next,
        };
        let mut response = Json(body).into_response();
        if let Some(link) = link {
            response.headers_mut().insert(header::LINK, link);
        }
        Ok(response)
    }

    fn export(self, export: Export) -> Response {
        struct Cursor<T> {
            listing: Listing<T>,
            remaining: usize,
            first: bool,
            done: bool,
        }
        let remaining = if self.limited { self.limit } else { usize::MAX };
        let start = Cursor {
            listing: self,
            remaining,
            first: true,
            done: false,
        };
        let chunks = futures::stream::unfold(start, move |mut at| async move {
            if at.done {
                return None;
            }
            let size = at.remaining.min(EXPORT_CHUNK);
            let page = match at.listing.read(at.listing.cursor, size).await {
                Ok(page) => page,
                Err(problem) => {
                    at.done = true;
                    let error = std::io::Error::other(problem.detail);
                    return Some((Err(error), at));
                }
            };
            if export == Export::Csv
                && let Err(error) = page.items.iter().try_for_each(Row::check)
            {
                at.done = true;
                return Some((Err(std::io::Error::other(error)), at));
            }
            let bytes = export.encode(&page.items, at.first);
            at.first = false;
            at.remaining -= page.items.len().min(at.remaining);
            at.listing.cursor = page.next_cursor;
            at.done = page.next_cursor.is_none() || at.remaining == 0;
            Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), at))
        });
        export.respond(Body::from_stream(chunks))
    }
}

fn read_page<T>(
    models: &StoredModels,
    query: &Query<T>,
    at: Option<AsOf>,
    cursor: Option<u64>,
    limit: usize,
) -> Result<Page<T>, Problem> {
    models
        .read(|reader| {
            let upto = match at {
                None | Some(AsOf::Latest) => None,
                Some(AsOf::Revision(r)) => Some(r),
                Some(AsOf::Time(t)) => match reader.revision_at(t)? {
                    Some(r) => Some(r),
                    None => return Ok(Page::whole(Vec::new())),
                },
            };
            query(reader, cursor, limit, upto)
        })
        .map_err(|error| Problem::unavailable(error.to_string()))
}

/// The request's path and query with `cursor` set.
fn with_cursor(uri: &Uri, cursor: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if name != "cursor" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("cursor", &cursor.to_string());
    format!("{}?{}", uri.path(), query.finish())
}

/// The open requests, their place in line and what each waits for.
#[utoipa::path(
    get,
    path = "/api/v1/queue",
    tag = "ledger",
    params(
        ("at" = Option<String>, Query, description = "As of a revision (digits) or a time (RFC 3339, `2026-11-25 03:12`, `now`, `2h ago`)")
    ),
    responses(
        (status = 200, description = "A page as JSON; with `Accept: text/csv` or `application/x-ndjson` the whole listing from the cursor, streamed", content(
            (PageOf<QueueItem> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("Link" = String, description = "`<next page>; rel=\"next\"` while more follow"))),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn queue(
    State(api): Api,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let params = params(&query, &["at"])?;
    let models = api.live(params.at()?).await?;
    let policy = api.policy();
    let items = models.read(|m| m.live.queue(&policy));
    Ok(whole(items, &headers))
}

/// Held locks.
#[utoipa::path(
    get,
    path = "/api/v1/locks",
    tag = "ledger",
    params(
        ("at" = Option<String>, Query, description = "As of a revision (digits) or a time (RFC 3339, `2026-11-25 03:12`, `now`, `2h ago`)")
    ),
    responses(
        (status = 200, description = "A page as JSON; with `Accept: text/csv` or `application/x-ndjson` the whole listing from the cursor, streamed", content(
            (PageOf<LockView> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("Link" = String, description = "`<next page>; rel=\"next\"` while more follow"))),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn locks(
    State(api): Api,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let params = params(&query, &["at"])?;
    let models = api.live(params.at()?).await?;
    let items = models.read(|m| m.live.locks());
    Ok(whole(items, &headers))
}

/// A listing that is never long (the live queue, the locks): one page, or one export.
fn whole<T: Row>(items: Vec<T>, headers: &HeaderMap) -> Response {
    match export_of(headers) {
        Some(export) => export.respond(Body::from(export.encode(&items, true))),
        None => Json(PageOf {
            items,
            next_cursor: None,
            next: None,
        })
        .into_response(),
    }
}

/// The freeze.
#[utoipa::path(
    get,
    path = "/api/v1/freeze",
    tag = "ledger",
    params(
        ("at" = Option<String>, Query, description = "As of a revision (digits) or a time (RFC 3339, `2026-11-25 03:12`, `now`, `2h ago`)")
    ),
    responses(
        (status = 200, description = "The freeze, as of `at`", body = FreezeView),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn freeze(State(api): Api, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let params = params(&query, &["at"])?;
    let models = api.live(params.at()?).await?;
    let view = models.read(|m| FreezeView::of(m.live.freeze()));
    Ok(Json(view).into_response())
}

fn deployment_filter(params: &Params) -> Result<DeploymentFilter, Problem> {
    Ok(DeploymentFilter {
        service: params.service()?,
        ticket: params.ticket()?,
        actor: params.actor()?,
        outcome: params.outcome()?,
        since: params.time("since")?,
        until: params.time("until")?,
    })
}

/// Every release request and how it ended, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/deployments",
    tag = "ledger",
    params(
        ("service" = Option<String>, Query, description = "Only this service"),
        ("ticket" = Option<String>, Query, description = "Only this ticket, e.g. PAY-1"),
        ("actor" = Option<String>, Query, description = "Only this person (a user id or a config name)"),
        ("outcome" = Option<String>, Query, description = "open, finished, rolled_back, abandoned, cancelled or rejected"),
        ("since" = Option<String>, Query, description = "At or after this time"),
        ("until" = Option<String>, Query, description = "At or before this time"),
        ("at" = Option<String>, Query, description = "As of a revision (digits) or a time (RFC 3339, `2026-11-25 03:12`, `now`, `2h ago`)"),
        ("cursor" = Option<u64>, Query, description = "Where the page starts: a `next_cursor`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows per page (default 100)")
    ),
    responses(
        (status = 200, description = "A page as JSON; with `Accept: text/csv` or `application/x-ndjson` the whole listing from the cursor, streamed", content(
            (PageOf<Deployment> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("Link" = String, description = "`<next page>; rel=\"next\"` while more follow"))),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deployments(
    State(api): Api,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let params = params(
        &query,
        &[
            "service", "ticket", "actor", "outcome", "since", "until", "at", "cursor", "limit",
        ],
    )?;
    let filter = deployment_filter(&params)?;
    let listing = listing(
        &api,
        &params,
        params.at()?,
        move |r, cursor, limit, upto| r.deployments(&filter, cursor, upto, limit),
    )?;
    listing.respond(&uri, &headers).await
}

/// A paged listing as of `at`, with the request's `cursor` and `limit`, once the follower has
/// caught up.
fn listing<T>(
    api: &ReadApi,
    params: &Params,
    at: Option<AsOf>,
    query: impl Fn(&Reader, Option<u64>, usize, Option<u64>) -> Result<Page<T>, ModelsError>
    + Send
    + Sync
    + 'static,
) -> Result<Listing<T>, Problem> {
    api.caught_up()?;
    Ok(Listing {
        models: api.followed.stored().clone(),
        query: Arc::new(query),
        at,
        cursor: params.cursor()?,
        limit: params.limit()?,
        limited: params.has("limit"),
    })
}

/// The audit history, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/history",
    tag = "ledger",
    params(
        ("service" = Option<String>, Query, description = "Only this service"),
        ("ticket" = Option<String>, Query, description = "Only this ticket, e.g. PAY-1"),
        ("actor" = Option<String>, Query, description = "Only this person (a user id or a config name)"),
        ("type" = Option<String>, Query, description = "An event type, e.g. DeploymentStarted"),
        ("since" = Option<String>, Query, description = "At or after this time"),
        ("until" = Option<String>, Query, description = "At or before this time"),
        ("at" = Option<String>, Query, description = "As of a revision (digits) or a time (RFC 3339, `2026-11-25 03:12`, `now`, `2h ago`)"),
        ("cursor" = Option<u64>, Query, description = "Where the page starts: a `next_cursor`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows per page (default 100)")
    ),
    responses(
        (status = 200, description = "A page as JSON; with `Accept: text/csv` or `application/x-ndjson` the whole listing from the cursor, streamed", content(
            (PageOf<HistoryEntry> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("Link" = String, description = "`<next page>; rel=\"next\"` while more follow"))),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn history(
    State(api): Api,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let params = params(
        &query,
        &[
            "service", "ticket", "actor", "type", "since", "until", "at", "cursor", "limit",
        ],
    )?;
    let filter = HistoryFilter {
        service: params.service()?,
        ticket: params.ticket()?,
        actor: params.actor()?,
        event_type: params.event_type()?,
        since: params.time("since")?,
        until: params.time("until")?,
    };
    let listing = listing(
        &api,
        &params,
        params.at()?,
        move |r, cursor, limit, upto| r.history(&filter, cursor, upto, limit),
    )?;
    listing.respond(&uri, &headers).await
}

fn service_of(text: &str) -> Result<ServiceName, Problem> {
    ServiceName::parse(text).map_err(|error| {
        Problem::from(crate::read::params::ParamError {
            parameter: "service".into(),
            reason: error.to_string(),
        })
    })
}

/// Who deployed a service, most recent start first.
#[utoipa::path(
    get,
    path = "/api/v1/who/{service}",
    tag = "ledger",
    params(
        ("service" = String, Path, description = "The service"),
        ("actor" = Option<String>, Query, description = "Only this person (a user id or a config name)"),
        ("outcome" = Option<String>, Query, description = "open, finished, rolled_back, abandoned, cancelled or rejected"),
        ("since" = Option<String>, Query, description = "At or after this time"),
        ("until" = Option<String>, Query, description = "At or before this time"),
        ("at" = Option<String>, Query, description = "As of a revision (digits) or a time (RFC 3339, `2026-11-25 03:12`, `now`, `2h ago`)"),
        ("cursor" = Option<u64>, Query, description = "Where the page starts: a `next_cursor`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows per page (default 100)")
    ),
    responses(
        (status = 200, description = "A page as JSON; with `Accept: text/csv` or `application/x-ndjson` the whole listing from the cursor, streamed", content(
            (PageOf<Deployment> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("Link" = String, description = "`<next page>; rel=\"next\"` while more follow"))),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn who(
    State(api): Api,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let service = service_of(&service)?;
    let params = params(
        &query,
        &[
            "actor", "outcome", "since", "until", "at", "cursor", "limit",
        ],
    )?;
    let filter = deployment_filter(&params)?;
    let listing = listing(
        &api,
        &params,
        params.at()?,
        move |r, cursor, limit, upto| r.who(&service, &filter, cursor, upto, limit),
    )?;
    listing.respond(&uri, &headers).await
}

/// Deployments on the services in the window before a time, latest first.
#[utoipa::path(
    get,
    path = "/api/v1/suspects",
    tag = "ledger",
    params(
        ("at" = Option<String>, Query, description = "The time it broke (default now)"),
        ("window" = Option<String>, Query, description = "How far back from `at`, e.g. 2h (default)"),
        ("service" = Option<Vec<String>>, Query, explode = true, description = "Only these services (repeat, or comma-separate)"),
        ("cursor" = Option<u64>, Query, description = "Where the page starts: a `next_cursor`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows per page (default 100)")
    ),
    responses(
        (status = 200, description = "A page as JSON; with `Accept: text/csv` or `application/x-ndjson` the whole listing from the cursor, streamed", content(
            (PageOf<Deployment> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("Link" = String, description = "`<next page>; rel=\"next\"` while more follow"))),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn suspects(
    State(api): Api,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let params = Params::parse(
        query.as_deref(),
        &["at", "window", "service", "cursor", "limit"],
        &["service"],
        Utc::now(),
    )?;
    let window = params.window()?.unwrap_or(Duration::hours(2));
    let services = params.all("service", |v| {
        ServiceName::parse(v).map_err(|e| e.to_string())
    })?;
    let at = match params.at()? {
        None | Some(AsOf::Latest) => Utc::now(),
        Some(AsOf::Time(t)) => t,
        Some(AsOf::Revision(_)) => {
            return Err(Problem::from(crate::read::params::ParamError {
                parameter: "at".into(),
                reason: "suspects are found before a time, not a revision".into(),
            }));
        }
    };
    // As of `at` by their own reading of the ledger at that time.
    let listing = listing(&api, &params, None, move |r, cursor, limit, _| {
        r.suspects(at, window, &services, cursor, limit)
    })?;
    listing.respond(&uri, &headers).await
}

/// What a report asks, from its parameters: `since` (default 30 days ago), `until` (default
/// now), `service`, `per` (default week).
pub fn report_query(params: &Params) -> Result<ReportQuery, Problem> {
    let now = Utc::now();
    let query = ReportQuery::new(
        params.time("since")?.unwrap_or(now - Duration::days(30)),
        params.time("until")?.unwrap_or(now),
        params.service()?,
        params.get("per", Per::parse)?.unwrap_or_default(),
    );
    query.check().map_err(|reason| {
        Problem::from(crate::read::params::ParamError {
            parameter: "since".into(),
            reason,
        })
    })?;
    Ok(query)
}

/// Delivery figures per period and service: deployments, rollbacks, the change-failure rate,
/// lead time, the waits, time to restore.
#[utoipa::path(
    get,
    path = "/api/v1/report",
    tag = "ledger",
    params(
        ("since" = Option<String>, Query, description = "From this time (default `30d`: 30 days ago)"),
        ("until" = Option<String>, Query, description = "Up to this time, exclusive (default now)"),
        ("service" = Option<String>, Query, description = "Only this service; without it every service and all together (`service: null`)"),
        ("per" = Option<String>, Query, description = "day, week (default; from Monday 00:00 UTC) or range")
    ),
    responses(
        (status = 200, description = "Every row as JSON; with `Accept: text/csv` or `application/x-ndjson` the same rows exported", content(
            (PageOf<Figures> = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn report(
    State(api): Api,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let params = params(&query, &["since", "until", "service", "per"])?;
    let query = report_query(&params)?;
    let rows = api.report(query).await?;
    Ok(whole(rows, &headers))
}

impl ReadApi {
    /// The figures of `query`, read on a blocking thread (a range's records, not a page).
    pub async fn report(&self, query: ReportQuery) -> Result<Vec<Figures>, Problem> {
        self.caught_up()?;
        let models = self.followed.stored().clone();
        tokio::task::spawn_blocking(move || models.read(|r| r.report(&query)))
            .await
            .map_err(|error| Problem::unavailable(error.to_string()))?
            .map_err(|error| Problem::unavailable(error.to_string()))
    }
}

/// The queue, the locks and the freeze as they were at a time.
#[utoipa::path(
    get,
    path = "/api/v1/replay",
    tag = "ledger",
    params(
        ("at" = String, Query, description = "The time to replay the ledger to")
    ),
    responses(
        (status = 200, description = "The state at `at`", body = Replay),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn replay(State(api): Api, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let params = params(&query, &["at"])?;
    let at = params.time("at")?.ok_or_else(|| {
        Problem::from(crate::read::params::ParamError {
            parameter: "at".into(),
            reason: "required: the time to replay the ledger to".into(),
        })
    })?;
    let models = api.live(Some(AsOf::Time(at))).await?;
    let policy = api.policy();
    let replay = models.read(|m| Replay::of(&m.live, at, &policy));
    Ok(Json(replay).into_response())
}

/// One event as stored.
#[utoipa::path(
    get,
    path = "/api/v1/events/{revision}",
    tag = "ledger",
    params(
        ("revision" = String, Path, description = "A ledger revision: 0, 1, 2, ...")
    ),
    responses(
        (status = 200, description = "The event", body = StoredEvent),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No event at that revision", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn event(
    State(api): Api,
    Path(revision): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    params(&query, &[])?;
    let revision: u64 = revision.trim().parse().map_err(|_| {
        Problem::from(crate::read::params::ParamError {
            parameter: "revision".into(),
            reason: format!("`{revision}` is not a revision (0, 1, 2, ...)"),
        })
    })?;
    let found = api
        .store
        .read(
            &api.stream,
            Direction::Forwards,
            ReadFrom::Revision(revision),
            1,
        )
        .await
        .map_err(|error| Problem::unavailable(error.to_string()))?;
    let Some(event) = found.into_iter().find(|e| e.revision == revision) else {
        return Err(Problem::not_found(format!(
            "the ledger has no event at revision {revision}"
        )));
    };
    let json_of = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
    };
    Ok(Json(StoredEvent {
        revision: event.revision,
        id: event.id,
        event_type: event.event_type.clone(),
        data: json_of(&event.data),
        metadata: json_of(&event.metadata),
        created: event.created,
    })
    .into_response())
}

/// Check the ledger: contiguous revisions, intact hash chain, valid events.
#[utoipa::path(
    get,
    path = "/api/v1/verify",
    tag = "ledger",
    responses(
        (status = 200, description = "What the check found: `ok`, or the first bad event", body = Verified),
        (status = 400, description = "A bad parameter, named under `invalid-params`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A read token or the SSO header is needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable or the read models are catching up", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn verify(State(api): Api, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    params(&query, &[])?;
    let mut verified = match crate::verify::verify(&api.store, &api.stream).await {
        Ok(report) => Verified {
            ok: true,
            stream: api.stream.clone(),
            events: Some(report.events),
            last_hash: Some(report.last_hash),
            bad_event: None,
            bad_snapshot: None,
            models_revision: None,
            bad_model: None,
        },
        Err(crate::verify::VerifyError::Bad(bad)) => Verified {
            ok: false,
            stream: api.stream.clone(),
            events: None,
            last_hash: None,
            bad_event: Some(BadEvent {
                revision: bad.revision,
                id: bad.id,
                event_type: bad.event_type.clone(),
                problem: bad.problem.to_string(),
            }),
            bad_snapshot: None,
            models_revision: None,
            bad_model: None,
        },
        Err(bad @ crate::verify::VerifyError::BadSnapshot { .. }) => Verified {
            ok: false,
            stream: api.stream.clone(),
            events: None,
            last_hash: None,
            bad_event: None,
            bad_snapshot: Some(bad.to_string()),
            models_revision: None,
            bad_model: None,
        },
        Err(crate::verify::VerifyError::Store(error)) => {
            return Err(Problem::unavailable(error.to_string()));
        }
    };
    if verified.ok {
        use crate::verify::ModelsVerifyError as Bad;
        let stored = api.followed.stored();
        match crate::verify::verify_models(&api.store, &api.stream, stored).await {
            Ok(report) => verified.models_revision = report.revision,
            Err(bad @ (Bad::Checkpoint { .. } | Bad::Differs { .. })) => {
                verified.ok = false;
                verified.bad_model = Some(bad.to_string());
            }
            Err(error) => return Err(Problem::unavailable(error.to_string())),
        }
    }
    Ok(Json(verified).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_filters_and_replaces_the_cursor() {
        let uri: Uri = "/api/v1/history?service=billing&cursor=3&limit=2"
            .parse()
            .unwrap();
        assert_eq!(
            with_cursor(&uri, 9),
            "/api/v1/history?service=billing&limit=2&cursor=9"
        );
    }

    #[test]
    fn exports_are_chosen_by_accept() {
        let accept = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, value.parse().unwrap());
            export_of(&headers)
        };
        assert_eq!(accept("text/csv"), Some(Export::Csv));
        assert_eq!(accept("application/x-ndjson; q=1"), Some(Export::Ndjson));
        assert_eq!(accept("application/json, */*"), None);
    }
}
