//! The audit history: every event of the ledger, refusals included, filtered by service, ticket,
//! actor, event type and time range. It keeps only the events that match, so a narrow query over
//! a long ledger stays small.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Projection;
use crate::domain::{Event, HistoryFilter, ServiceName, TicketKey};
use crate::envelope::{Recorded, Source};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub revision: u64,
    pub recorded_at: DateTime<Utc>,
    pub event_type: &'static str,
    pub ticket: Option<TicketKey>,
    pub services: Vec<ServiceName>,
    pub actor: String,
    pub actor_name: String,
    pub source: Source,
    /// The command as typed.
    pub command: String,
    /// The event's link in the hash chain (`verify` checks it).
    pub hash: String,
    /// The event's data, tagged with its `type`, as `schemas/<type>.json` describes it.
    #[schema(value_type = Object)]
    pub event: Event,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub filter: HistoryFilter,
    pub entries: Vec<HistoryEntry>,
    /// The services of each ticket's latest request, to filter by service.
    services: HashMap<TicketKey, Vec<ServiceName>>,
}

impl History {
    pub fn new(filter: HistoryFilter) -> Self {
        History {
            filter,
            ..History::default()
        }
    }

    fn services_of(&self, event: &Event) -> Vec<ServiceName> {
        services_of(event, |ticket| self.services.get(ticket).cloned())
    }

    /// The entries that match `filter`, oldest first. (The persisted models answer the
    /// questions from their indexes; this fold is what they are checked against.)
    pub fn matching<'a>(
        &'a self,
        filter: &'a HistoryFilter,
    ) -> impl DoubleEndedIterator<Item = &'a HistoryEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| matches(filter, &e.event, e.recorded_at, &e.services))
    }
}

/// The services an event concerns: those it names, or those of its ticket's latest request
/// (`requested`).
pub fn services_of(
    event: &Event,
    requested: impl FnOnce(&TicketKey) -> Option<Vec<ServiceName>>,
) -> Vec<ServiceName> {
    match event {
        Event::ReleaseRequested { services, .. } | Event::DeploymentStarted { services, .. } => {
            services.clone()
        }
        Event::FreezeStarted {
            services: Some(s), ..
        } => s.clone(),
        other => other.ticket().and_then(requested).unwrap_or_default(),
    }
}

/// A freeze of every service: it belongs to every service's history.
pub fn is_whole_freeze(event: &Event) -> bool {
    matches!(
        event,
        Event::FreezeStarted { services: None, .. } | Event::FreezeEnded { .. }
    )
}

impl HistoryEntry {
    /// The entry of a recorded event that concerns `services`.
    pub fn of(recorded: &Recorded, services: Vec<ServiceName>) -> HistoryEntry {
        let meta = &recorded.metadata;
        HistoryEntry {
            revision: recorded.revision,
            recorded_at: meta.recorded_at,
            event_type: recorded.event.type_name(),
            ticket: recorded.event.ticket().cloned(),
            services,
            actor: meta.actor.id.to_string(),
            actor_name: meta.actor.name.clone(),
            source: meta.actor.source,
            command: meta.command.clone(),
            hash: meta.hash.clone(),
            event: recorded.event.clone(),
        }
    }
}

/// Whether an entry matches a filter.
pub fn entry_matches(filter: &HistoryFilter, entry: &HistoryEntry) -> bool {
    matches(filter, &entry.event, entry.recorded_at, &entry.services)
}

fn matches(f: &HistoryFilter, event: &Event, at: DateTime<Utc>, services: &[ServiceName]) -> bool {
    let whole_freeze = is_whole_freeze(event);
    f.ticket.as_ref().is_none_or(|t| event.ticket() == Some(t))
        && f.actor.as_ref().is_none_or(|a| event.actor() == a)
        && f.event_type
            .as_ref()
            .is_none_or(|t| t.eq_ignore_ascii_case(event.type_name()))
        && f.service
            .as_ref()
            .is_none_or(|s| whole_freeze || services.contains(s))
        && f.since.is_none_or(|s| at >= s)
        && f.until.is_none_or(|u| at <= u)
}

impl Projection for History {
    fn apply(&mut self, recorded: &Recorded) {
        if let Event::ReleaseRequested {
            ticket, services, ..
        } = &recorded.event
        {
            self.services.insert(ticket.clone(), services.clone());
        }
        let services = self.services_of(&recorded.event);
        if !matches(
            &self.filter,
            &recorded.event,
            recorded.metadata.recorded_at,
            &services,
        ) {
            return;
        }
        self.entries.push(HistoryEntry::of(recorded, services));
    }
}
