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
                Waiting::Turn { ahead } => format!("turn (after {ahead})"),
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
    const HEADERS: &'static [&'static str] = &["lock", "ticket", "by", "since"];

    fn cells(&self) -> Vec<String> {
        vec![
            lock_name(&self.lock),
            self.ticket.to_string(),
            self.by.to_string(),
            self.since.to_rfc3339(),
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
                Some(DeploymentOutcome::Cancelled) => "cancelled",
                Some(DeploymentOutcome::Rejected) => "rejected",
            }
            .to_string(),
            opt(&self.duration_secs),
        ]
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
