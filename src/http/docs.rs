//! The API's reference: the OpenAPI 3.1 document at `/api/openapi.json`, generated from the
//! handlers and the rows' types (`utoipa`), and the same document rendered as a page at
//! `/api/docs`, served from the binary with nothing fetched from elsewhere.

use std::fmt::Write;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use utoipa::OpenApi;

use super::api::ApiDoc;
use crate::render::escape_html as escape;

static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null));

/// The document as JSON.
pub fn document() -> &'static Value {
    &DOCUMENT
}

pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.to_string(),
    )
        .into_response()
}

pub async fn page() -> Html<String> {
    Html(render(&DOCUMENT))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The name of a schema a `$ref` points at, or its type.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    }
}

/// The reference page: each operation with its parameters and responses, then each schema.
pub fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
         code,pre{{font-family:ui-monospace,monospace}}pre{{background:#f4f4f4;padding:.5rem;overflow:auto}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}}\
         .op{{border-top:2px solid #333;margin-top:2rem}}.method{{font-weight:bold;text-transform:uppercase}}\
         </style></head><body><h1>{title}</h1><p>{description}</p>\
         <p>OpenAPI {openapi}: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>",
        title = escape(text(info, "title")),
        description = escape(text(info, "description")),
        openapi = escape(text(doc, "openapi")),
    );
    html.push_str("<h2>Operations</h2><ul>");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let _ = write!(
                html,
                "<li><a href=\"#{id}\"><span class=\"method\">{method}</span> <code>{path}</code></a> {summary}</li>",
                id = escape(text(op, "operationId")),
                method = escape(method),
                path = escape(path),
                summary = escape(text(op, "summary")),
            );
        }
    }
    html.push_str("</ul>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let _ = write!(
                html,
                "<section class=\"op\" id=\"{id}\"><h3><span class=\"method\">{method}</span> <code>{path}</code></h3><p>{summary}</p>",
                id = escape(text(op, "operationId")),
                method = escape(method),
                path = escape(path),
                summary = escape(text(op, "summary")),
            );
            if let Some(parameters) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                html.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>what</th></tr>");
                for p in parameters {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(text(p, "name")),
                        escape(text(p, "in")),
                        escape(&schema_name(&p["schema"])),
                        if p["required"].as_bool().unwrap_or(false) {
                            "yes"
                        } else {
                            "no"
                        },
                        escape(text(p, "description")),
                    );
                }
                html.push_str("</table>");
            }
            html.push_str(
                "<h4>Responses</h4><table><tr><th>status</th><th>what</th><th>content</th></tr>",
            );
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let content: Vec<String> = response["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(kind, c)| format!("{} ({})", kind, schema_name(&c["schema"])))
                    .collect();
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(status),
                    escape(text(response, "description")),
                    escape(&content.join(", ")),
                );
            }
            html.push_str("</table></section>");
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
        let _ = write!(
            html,
            "<section id=\"schema-{name}\"><h3>{name}</h3><pre>{pretty}</pre></section>",
            name = escape(name),
            pretty = escape(&pretty),
        );
    }
    html.push_str("</body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_endpoint() {
        let doc = document();
        assert!(
            text(doc, "openapi").starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        for path in [
            "/api/v1/queue",
            "/api/v1/locks",
            "/api/v1/freeze",
            "/api/v1/deployments",
            "/api/v1/history",
            "/api/v1/who/{service}",
            "/api/v1/suspects",
            "/api/v1/replay",
            "/api/v1/events/{revision}",
            "/api/v1/verify",
            "/api/v1/commands",
            "/health",
            "/ready",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
        }
        for schema in [
            "QueueItem",
            "Deployment",
            "HistoryEntry",
            "Problem",
            "Replay",
        ] {
            assert!(
                doc["components"]["schemas"].get(schema).is_some(),
                "no schema {schema}"
            );
        }
    }

    #[test]
    fn the_page_names_every_operation_and_escapes_what_it_shows() {
        let page = render(document());
        assert!(page.contains("<code>/api/v1/who/{service}</code>"));
        assert!(page.contains("<h3>HistoryEntry</h3>"));
        let hostile = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "<script>x</script>", "description": ""},
            "paths": {}
        });
        let page = render(&hostile);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;x"));
    }
}
