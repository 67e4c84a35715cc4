//! The read commands asked of a running `serve` (`--server URL` or `DOBROBOT_SERVER`) instead of
//! folding the ledger here: `serve` keeps the read models current and indexed, so an answer
//! costs what the answer is, whatever the ledger's length (and it works the same on SQLite and
//! EventStoreDB, with no local copy of anything).
//!
//! The rows come back in the API's exports, which have the CLI's own columns: CSV is printed as
//! it comes, a table is drawn from the CSV, JSON is the NDJSON rows gathered into an array.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use futures::StreamExt;
use serde_json::Value;

use crate::read::rows::Format;

/// A running `serve`'s read API.
pub struct Server {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Server {
    pub fn new(url: &str, token: Option<String>) -> Result<Server> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("--server `{url}`: expected an http:// or https:// URL (serve's address)");
        }
        crate::slack::socket::install_crypto_provider();
        Ok(Server {
            base,
            token: token.filter(|t| !t.is_empty()),
            http: reqwest::Client::builder()
                .build()
                .context("an HTTP client")?,
        })
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        accept: &str,
    ) -> Result<reqwest::Response> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .header(reqwest::header::ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("asking {}", self.base))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|p| p["detail"].as_str().map(str::to_string))
                .unwrap_or(body);
            bail!("{} answered {status}: {detail}", self.base);
        }
        Ok(response)
    }

    /// A listing (`/api/v1/...`), every row, printed in `format`.
    pub async fn listing(
        &self,
        out: &mut dyn Write,
        format: Format,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<()> {
        match format {
            Format::Csv => {
                let mut body = self.get(path, query, "text/csv").await?.bytes_stream();
                while let Some(chunk) = body.next().await {
                    out.write_all(&chunk?)?;
                }
            }
            Format::Table => {
                let text = self.get(path, query, "text/csv").await?.text().await?;
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let mut table = Table::new();
                table
                    .load_style(UTF8_FULL_CONDENSED)
                    .set_header(reader.headers()?.iter().collect::<Vec<_>>());
                for record in reader.records() {
                    table.add_row(record?.iter().collect::<Vec<_>>());
                }
                writeln!(out, "{table}")?;
            }
            Format::Json => {
                let text = self
                    .get(path, query, "application/x-ndjson")
                    .await?
                    .text()
                    .await?;
                let rows = text
                    .lines()
                    .map(serde_json::from_str)
                    .collect::<Result<Vec<Value>, _>>()
                    .context("the server's rows")?;
                serde_json::to_writer_pretty(&mut *out, &rows)?;
                writeln!(out)?;
            }
        }
        Ok(())
    }

    /// `replay`: the state at `at`, as the local command prints it.
    pub async fn replay(&self, out: &mut dyn Write, format: Format, at: String) -> Result<()> {
        let query = [("at", at)];
        let replay: Value = self
            .get("/api/v1/replay", &query, "application/json")
            .await?
            .json()
            .await?;
        if format == Format::Json {
            serde_json::to_writer_pretty(&mut *out, &replay)?;
            writeln!(out)?;
            return Ok(());
        }
        let revision = replay["revision"]
            .as_u64()
            .map_or("none".to_string(), |r| r.to_string());
        writeln!(
            out,
            "As of {} (ledger revision {revision})",
            replay["at"]
                .as_str()
                .unwrap_or_default()
                .replace('Z', "+00:00")
        )?;
        if let (Some(by), Some(reason)) = (
            replay["freeze"]["by"].as_str(),
            replay["freeze"]["reason"].as_str(),
        ) {
            writeln!(out, "Frozen by {by}: {reason}")?;
        }
        writeln!(out, "Queue:")?;
        self.listing(out, format, "/api/v1/queue", &query).await?;
        writeln!(out, "Locks:")?;
        self.listing(out, format, "/api/v1/locks", &query).await
    }

    /// `verify`, run by the server on its store.
    pub async fn verify(&self, out: &mut dyn Write) -> Result<ExitCode> {
        let verified: Value = self
            .get("/api/v1/verify", &[], "application/json")
            .await?
            .json()
            .await?;
        if verified["ok"] == true {
            writeln!(
                out,
                "ok: {} events in {}, hash chain intact, every event valid; last hash {}",
                verified["events"],
                verified["stream"].as_str().unwrap_or_default(),
                verified["last_hash"].as_str().unwrap_or_default()
            )?;
            if let Some(revision) = verified["models_revision"].as_u64() {
                writeln!(
                    out,
                    "ok: the server's read models equal a fresh fold at revision {revision}"
                )?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let problem = match &verified["bad_event"] {
            Value::Null => verified["bad_snapshot"]
                .as_str()
                .or(verified["bad_model"].as_str())
                .unwrap_or_default()
                .to_string(),
            bad => format!(
                "event at revision {} ({}, {}): {}",
                bad["revision"],
                bad["id"].as_str().unwrap_or_default(),
                bad["type"].as_str().unwrap_or_default(),
                bad["problem"].as_str().unwrap_or_default()
            ),
        };
        writeln!(out, "FAILED: {problem}")?;
        Ok(ExitCode::from(1))
    }
}
