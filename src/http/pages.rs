//! The pages people look at, under the same access gate as the API: `/report`, the delivery
//! figures drawn on the server. A page's error is a page too, saying what was wrong.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use super::api::{ReadApi, report_query};
use super::problem::Problem;
use crate::read::params::Params;
use crate::render::escape_html;

pub fn routes(api: Arc<ReadApi>) -> Router {
    Router::new().route("/report", get(report)).with_state(api)
}

/// The report page: the form's fields are the API's parameters, so a report is a link.
async fn report(State(api): State<Arc<ReadApi>>, RawQuery(query): RawQuery) -> Response {
    let answer = async {
        // An empty field of the form is not a parameter.
        let query = query.map(|q| {
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
        });
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
        Err(problem) => error_page(&problem),
    }
}

fn error_page(problem: &Problem) -> Response {
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
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p class=\"problem\">{detail}</p><p><a href=\"/report\">Back to the report</a></p></body></html>",
        title = escape_html(&problem.title),
    );
    (status, Html(page)).into_response()
}
