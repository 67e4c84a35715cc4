//! A release marker: what every sink is told about one deployment event, read once from the
//! ledger and handed to each sink as it is. The ledger event id travels with it as the
//! deduplication key, so that a receiver recognises a repeat after a crash or a takeover.
//!
//! A finish or rollback names only the ticket; the services it concerns and the start's event
//! (whose Grafana annotation becomes a region) come from the deployment it ends, found in the
//! persisted deployments model and read back from the ledger.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::domain::{Event, ServiceName, TicketKey, UserId};
use crate::envelope::Recorded;
use crate::store::RecordedEvent;

/// How the marked step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    Finished,
    RolledBack,
    /// Ended by a takeover (`DeploymentAbandoned`).
    Abandoned,
}

impl Outcome {
    /// The word sinks use (a Grafana tag, PagerDuty's summary, the webhook's JSON).
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Finished => "finished",
            Outcome::RolledBack => "rolled_back",
            Outcome::Abandoned => "abandoned",
        }
    }

    /// The outcome of `event`, if sinks mark it.
    pub fn of(event: &Event) -> Option<Outcome> {
        match event {
            Event::DeploymentStarted { .. } => Some(Outcome::Started),
            Event::DeploymentFinished { .. } => Some(Outcome::Finished),
            Event::DeploymentRolledBack { .. } => Some(Outcome::RolledBack),
            Event::DeploymentAbandoned { .. } => Some(Outcome::Abandoned),
            _ => None,
        }
    }
}

/// The start of the deployment a finish or rollback ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub event_id: Uuid,
    pub at: DateTime<Utc>,
}

/// One deployment event, as sinks deliver it.
#[derive(Debug, Clone)]
pub struct Marker {
    /// The ledger event's id: the deduplication key.
    pub event_id: Uuid,
    pub revision: u64,
    pub event_type: String,
    pub outcome: Outcome,
    pub ticket: TicketKey,
    pub by: UserId,
    pub services: Vec<ServiceName>,
    /// A rollback's or a takeover's reason.
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// For a finish or rollback, its deployment's start (when the ledger has it).
    pub start: Option<Start>,
    /// The event's data and metadata exactly as recorded, for the webhooks.
    pub data: Box<RawValue>,
    pub metadata: Box<RawValue>,
}

impl Marker {
    /// The marker of `recorded` (`raw` as stored), `None` for an event sinks do not mark. The
    /// services and the start of a finish or rollback are `start` (read by the caller).
    pub fn of(
        raw: &RecordedEvent,
        recorded: &Recorded,
        start: Option<(Start, Vec<ServiceName>)>,
    ) -> Option<Marker> {
        let outcome = Outcome::of(&recorded.event)?;
        let ticket = recorded.event.ticket()?.clone();
        let (start, services, reason) = match &recorded.event {
            Event::DeploymentStarted { services, .. } => (None, services.clone(), None),
            Event::DeploymentRolledBack { reason, .. }
            | Event::DeploymentAbandoned { reason, .. } => {
                let (start, services) = start.unzip();
                (
                    start,
                    services.unwrap_or_default(),
                    Some(reason.as_str().to_string()),
                )
            }
            _ => {
                let (start, services) = start.unzip();
                (start, services.unwrap_or_default(), None)
            }
        };
        let json = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| RawValue::from_string(text.to_string()).ok())
        };
        Some(Marker {
            event_id: recorded.id,
            revision: recorded.revision,
            event_type: raw.event_type.clone(),
            outcome,
            ticket,
            by: recorded.event.actor().clone(),
            services,
            reason,
            at: recorded.metadata.recorded_at,
            start,
            // Both decoded already as the envelope read them, so both are JSON.
            data: json(&raw.data)?,
            metadata: json(&raw.metadata)?,
        })
    }

    /// One line for people: "PAY-1 (billing) started by alice".
    pub fn summary(&self) -> String {
        let services: Vec<&str> = self.services.iter().map(|s| s.as_str()).collect();
        let what = if services.is_empty() {
            self.ticket.to_string()
        } else {
            format!("{} ({})", self.ticket, services.join(", "))
        };
        let verb = match self.outcome {
            Outcome::Started => "deployment started",
            Outcome::Finished => "deployment finished",
            Outcome::RolledBack => "deployment rolled back",
            Outcome::Abandoned => "deployment taken over",
        };
        let mut line = format!("{what}: {verb} by {}", self.by);
        if let Some(reason) = &self.reason {
            line.push_str(&format!(" ({reason})"));
        }
        line
    }
}
