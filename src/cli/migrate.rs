//! `dobrobot migrate --from URL --to URL`: copies the ledger of the configured environment between
//! two stores (see `crate::migrate`) and says what it did. Exit status: 0 when the target holds
//! the ledger (copied now or before), 1 when the copy is refused before anything is written (a
//! broken source, a target that holds something else), 3 when it fails (a store, or a copy that
//! does not verify).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::migrate::{self, Options, Report};
use crate::store::esdb::redact;
use crate::store::{self, EventStore};

pub async fn run(config: &Config, from: &str, to: &str) -> Result<ExitCode> {
    let stream = config.stream();
    let source = open("source", from).await?;
    let target = open("target", to).await?;
    let (from, to) = (redact(from), redact(to));
    match migrate::migrate(&source, &target, &stream, &Options::default()).await {
        Ok(report) => {
            writeln!(std::io::stdout().lock(), "{}", summary(&report, &from, &to))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if error.is_refusal() => {
            writeln!(std::io::stderr().lock(), "refused: {error}")?;
            Ok(ExitCode::from(1))
        }
        Err(error) => Err(error.into()),
    }
}

/// Opens a store. Store URLs may carry credentials (`esdb://admin:changeit@host:2113`), so the
/// URL is named with its password masked, as the store's own errors name it.
async fn open(role: &str, url: &str) -> Result<Arc<dyn EventStore>> {
    store::open(url)
        .await
        .with_context(|| format!("opening the {role} store {}", redact(url)))
}

fn summary(report: &Report, from: &str, to: &str) -> String {
    let Report {
        stream,
        events,
        already_present,
        copied,
        batches,
        last_hash,
    } = report;
    if *events == 0 {
        return format!("nothing to copy: {stream} has no events in {from}");
    }
    let verified = format!("verify passes on {to}: {events} events, last hash {last_hash}");
    if *copied == 0 {
        return format!(
            "nothing to copy: {to} already holds all {events} events of {stream}; {verified}"
        );
    }
    let resumed = if *already_present > 0 {
        format!(" after the {already_present} already there")
    } else {
        String::new()
    };
    format!(
        "copied {copied} events of {stream} from {from} to {to}{resumed}, in {batches} {appends}; {verified}",
        appends = if *batches == 1 { "append" } else { "appends" }
    )
}
