//! A listing's rows, defined once for the CLI and the HTTP API: their JSON is their serde form,
//! their CSV (and the CLI's table) the columns below.

use std::io::Write;

use clap::ValueEnum;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::domain::LockKey;
use crate::domain::{Event, QueueItem, Waiting};
use crate::projections::live::LockView;
use crate::projections::{Deployment, DeploymentOutcome, HistoryEntry};
use crate::render::Renderer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// A listed thing: its columns for table and CSV; JSON is its serde form.
pub trait Row: Serialize {
    const HEADERS: &'static [&'static str];
    /// Whether `cells` can be written: a row read lazily (`Stored`) says here that it cannot.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    fn cells(&self) -> Vec<String>;
}

/// Writes a listing to `out` in `format` page by page, `next` reading the page after a cursor:
/// each page is written and dropped before the next is read, so a year of history is never in
/// memory at once. JSON is one array, as `write_rows` writes it; CSV has one header; a table is
/// written a page at a time, each with its header.
pub fn write_pages<R: Row>(
    out: &mut dyn Write,
    format: Format,
    mut next: impl FnMut(Option<u64>) -> anyhow::Result<super::Page<R>>,
) -> anyhow::Result<()> {
    let mut cursor = None;
    let mut written = 0usize;
    loop {
        let page = next(cursor)?;
        match format {
            Format::Json => {
                for row in &page.items {
                    out.write_all(if written == 0 { b"[\n" } else { b",\n" })?;
                    // The array's own indentation, as `to_writer_pretty` gives it.
                    let text = serde_json::to_string_pretty(row)?;
                    for (i, line) in text.lines().enumerate() {
                        if i > 0 {
                            out.write_all(b"\n")?;
                        }
                        write!(out, "  {line}")?;
                    }
                    written += 1;
                }
            }
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                if cursor.is_none() {
                    writer.write_record(R::HEADERS)?;
                }
                for row in &page.items {
                    row.check().map_err(anyhow::Error::msg)?;
                    writer.write_record(row.cells())?;
                    written += 1;
                }
                let bytes = writer
                    .into_inner()
                    .map_err(|error| anyhow::anyhow!("writing CSV: {error}"))?;
                out.write_all(&bytes)?;
            }
            Format::Table => {
                if written == 0 || !page.items.is_empty() {
                    write_rows(out, format, &page.items)?;
                }
                written += page.items.len();
            }
        }
        match page.next_cursor {
            Some(after) => cursor = Some(after),
            None => break,
        }
    }
    if format == Format::Json {
        out.write_all(if written == 0 { b"[]\n" } else { b"\n]\n" })?;
    }
    Ok(())
}

/// Writes `rows` to `out` in `format`.
pub fn write_rows<R: Row>(out: &mut dyn Write, format: Format, rows: &[R]) -> anyhow::Result<()> {
    if format != Format::Json {
        for row in rows {
            row.check().map_err(anyhow::Error::msg)?;
        }
    }
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(R::HEADERS)?;
            for row in rows {
                writer.write_record(row.cells())?;
            }
            writer.flush()?;
        }
        Format::Table => {
            let mut table = Table::new();
            table
                .load_style(UTF8_FULL_CONDENSED)
                .set_header(R::HEADERS.to_vec());
            for row in rows {
                table.add_row(row.cells());
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(())
}

fn list<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

fn opt<T: ToString>(item: &Option<T>) -> String {
    item.as_ref().map(T::to_string).unwrap_or_default()
}

/// Why, for the events that carry a why: refusals, rejections, rollbacks, freezes.
fn detail(event: &Event) -> String {
    match event {
        Event::CommandRefused { refusal, .. } => Renderer::plain(None).refusal(refusal),
        Event::ReleaseRejected { reason, .. }
        | Event::DeploymentRolledBack { reason, .. }
        | Event::FreezeStarted { reason, .. } => reason.to_string(),
        _ => String::new(),
    }
}

fn lock_name(lock: &LockKey) -> String {
    match lock {
        LockKey::Service(s) => s.to_string(),
        LockKey::Group(g) => format!("group:{g}"),
    }
}

impl Row for QueueItem {
    const HEADERS: &'static [&'static str] = &[
        "position",
        "ticket",
        "services",
        "requester",
        "status",
        "waiting_for",
    ];

    fn cells(&self) -> Vec<String> {
        let waiting: Vec<String> = self
            .waiting_for
            .iter()
            .map(|w| match w {
                Waiting::Approval => "approval".to_string(),
                Waiting::Admin => "admin".to_string(),
                Waiting::Freeze => "freeze".to_string(),
                Waiting::Lock { lock, ticket } => format!("lock {} ({ticket})", lock_name(lock)),
                Waiting::Turn { ahead, over } => {
                    format!("turn (after {ahead}, {})", lock_name(over))
                }
            })
            .collect();
        vec![
            self.position.to_string(),
            self.ticket.to_string(),
            list(&self.services),
            self.requester.to_string(),
            format!("{:?}", self.status).to_lowercase(),
            waiting.join("; "),
        ]
    }
}

impl Row for LockView {
    const HEADERS: &'static [&'static str] = &["lock", "ticket", "by", "since", "alive_until"];

    fn cells(&self) -> Vec<String> {
        vec![
            lock_name(&self.lock),
            self.ticket.to_string(),
            self.by.to_string(),
            self.since.to_rfc3339(),
            self.alive_until.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ]
    }
}

impl Row for Deployment {
    const HEADERS: &'static [&'static str] = &[
        "ticket",
        "services",
        "requester",
        "approver",
        "admin",
        "started_at",
        "finished_at",
        "outcome",
        "duration_secs",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.ticket.to_string(),
            list(&self.services),
            self.requester.to_string(),
            opt(&self.approver),
            opt(&self.admin),
            self.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            self.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            match self.outcome {
                None => "open",
                Some(DeploymentOutcome::Finished) => "finished",
                Some(DeploymentOutcome::RolledBack) => "rolled_back",
                Some(DeploymentOutcome::Abandoned) => "abandoned",
                Some(DeploymentOutcome::Cancelled) => "cancelled",
                Some(DeploymentOutcome::Rejected) => "rejected",
            }
            .to_string(),
            opt(&self.duration_secs),
        ]
    }
}

impl Row for super::report::Figures {
    const HEADERS: &'static [&'static str] = &[
        "period_start",
        "period_end",
        "service",
        "deployments",
        "rollbacks",
        "change_failure_rate",
        "lead_time_median_secs",
        "lead_time_p90_secs",
        "approval_wait_median_secs",
        "approval_wait_p90_secs",
        "admin_wait_median_secs",
        "admin_wait_p90_secs",
        "lock_wait_median_secs",
        "lock_wait_p90_secs",
        "time_to_restore_median_secs",
        "time_to_restore_p90_secs",
        "unrestored",
    ];

    fn cells(&self) -> Vec<String> {
        let mut cells = vec![
            self.period_start.to_rfc3339(),
            self.period_end.to_rfc3339(),
            self.service
                .as_ref()
                .map_or("(all)".to_string(), ToString::to_string),
            self.deployments.to_string(),
            self.rollbacks.to_string(),
            self.change_failure_rate
                .map(|r| format!("{r:.3}"))
                .unwrap_or_default(),
        ];
        for spread in [
            &self.lead_time,
            &self.approval_wait,
            &self.admin_wait,
            &self.lock_wait,
            &self.time_to_restore,
        ] {
            cells.push(opt(&spread.median_secs));
            cells.push(opt(&spread.p90_secs));
        }
        cells.push(self.unrestored.to_string());
        cells
    }
}

impl Row for HistoryEntry {
    const HEADERS: &'static [&'static str] = &[
        "revision",
        "recorded_at",
        "type",
        "ticket",
        "services",
        "actor",
        "source",
        "command",
        "detail",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.revision.to_string(),
            self.recorded_at.to_rfc3339(),
            self.event_type.to_string(),
            opt(&self.ticket),
            list(&self.services),
            self.actor.clone(),
            format!("{:?}", self.source).to_lowercase(),
            self.command.clone(),
            detail(&self.event),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Page;

    #[derive(Serialize)]
    struct Item {
        n: u64,
        text: String,
    }

    impl Row for Item {
        const HEADERS: &'static [&'static str] = &["n", "text"];

        fn cells(&self) -> Vec<String> {
            vec![self.n.to_string(), self.text.clone()]
        }
    }

    fn items(count: u64) -> Vec<Item> {
        (1..=count)
            .map(|n| Item {
                n,
                text: format!("line {n}\nwith \"quotes\", and a comma"),
            })
            .collect()
    }

    fn written(format: Format, count: u64, page_size: usize) -> String {
        let mut out = Vec::new();
        write_pages(&mut out, format, |after| {
            let rest: Vec<Item> = items(count)
                .into_iter()
                .filter(|i| after.is_none_or(|a| i.n > a))
                .take(page_size + 1)
                .collect();
            Ok(Page::of(rest, page_size, |i| i.n))
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_listing_written_page_by_page_is_the_listing_written_at_once() {
        for format in [Format::Json, Format::Csv] {
            for count in [0, 1, 5, 7] {
                let mut whole = Vec::new();
                write_rows(&mut whole, format, &items(count)).unwrap();
                let whole = String::from_utf8(whole).unwrap();
                for page_size in [1, 2, 3, 10] {
                    assert_eq!(
                        written(format, count, page_size),
                        whole,
                        "{format:?}, {count} rows, pages of {page_size}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_table_written_page_by_page_has_every_row() {
        let text = written(Format::Table, 7, 3);
        for n in 1..=7 {
            assert!(text.contains(&format!("line {n}")), "{text}");
        }
        assert!(
            written(Format::Table, 0, 3).contains("text"),
            "an empty table has its header"
        );
    }
}
