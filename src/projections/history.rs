//! The audit history: every event of the ledger, refusals included, filtered by service, ticket,
//! actor, event type and time range. It keeps only the events that match, so a narrow query over
//! a long ledger stays small.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Projection;
use crate::domain::{Event, HistoryFilter, ServiceName, TicketKey, UserId};
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
    /// Positions in `entries` by ticket, actor and service (freezes of every service are in
    /// `whole`), so that a question about one of them reads only its entries.
    by_ticket: HashMap<TicketKey, Vec<usize>>,
    by_actor: HashMap<UserId, Vec<usize>>,
    by_service: HashMap<ServiceName, Vec<usize>>,
    whole: Vec<usize>,
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

    /// The entries that match `filter`, oldest first: the whole history kept by the follower
    /// answers any filter from memory.
    pub fn matching<'a>(
        &'a self,
        filter: &'a HistoryFilter,
    ) -> impl DoubleEndedIterator<Item = &'a HistoryEntry> + 'a {
        self.candidates(filter, None)
            .into_iter()
            .map(|i| &self.entries[i])
            .filter(move |e| matches(filter, &e.event, e.recorded_at, &e.services))
    }

    /// The entries that match `filter` after revision `after`, oldest first.
    pub fn matching_after<'a>(
        &'a self,
        filter: &'a HistoryFilter,
        after: Option<u64>,
    ) -> impl Iterator<Item = &'a HistoryEntry> + 'a {
        self.candidates(filter, after)
            .into_iter()
            .map(|i| &self.entries[i])
            .filter(move |e| matches(filter, &e.event, e.recorded_at, &e.services))
    }

    /// Positions that may match, from the narrowest index the filter names, after `after`.
    fn candidates(&self, filter: &HistoryFilter, after: Option<u64>) -> Candidates<'_> {
        if let Some(ticket) = &filter.ticket {
            return Candidates::Some(self.after(self.by_ticket.get(ticket), after), &[]);
        }
        if let Some(actor) = &filter.actor {
            return Candidates::Some(self.after(self.by_actor.get(actor), after), &[]);
        }
        if let Some(service) = &filter.service {
            return Candidates::Some(
                self.after(self.by_service.get(service), after),
                self.after(Some(&self.whole), after),
            );
        }
        let start = after.map_or(0, |after| {
            self.entries.partition_point(|e| e.revision <= after)
        });
        Candidates::All(start..self.entries.len())
    }
}

impl History {
    /// The positions of an index after revision `after`.
    fn after<'a>(&self, positions: Option<&'a Vec<usize>>, after: Option<u64>) -> &'a [usize] {
        let positions = positions.map_or(&[][..], Vec::as_slice);
        let first = after.map_or(0, |after| {
            positions.partition_point(|&i| self.entries[i].revision <= after)
        });
        &positions[first..]
    }
}

/// Positions in `History::entries`: a range of all of them, or the merge of two sorted lists.
enum Candidates<'a> {
    All(std::ops::Range<usize>),
    Some(&'a [usize], &'a [usize]),
}

impl<'a> IntoIterator for Candidates<'a> {
    type Item = usize;
    type IntoIter = Box<dyn DoubleEndedIterator<Item = usize> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        match self {
            Candidates::All(range) => Box::new(range),
            Candidates::Some(one, []) => Box::new(one.iter().copied()),
            Candidates::Some(one, two) => {
                let mut merged: Vec<usize> = one.iter().chain(two).copied().collect();
                merged.sort_unstable();
                Box::new(merged.into_iter())
            }
        }
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
        let position = self.entries.len();
        if let Some(ticket) = recorded.event.ticket() {
            self.by_ticket
                .entry(ticket.clone())
                .or_default()
                .push(position);
        }
        self.by_actor
            .entry(recorded.event.actor().clone())
            .or_default()
            .push(position);
        for service in &services {
            self.by_service
                .entry(service.clone())
                .or_default()
                .push(position);
        }
        if is_whole_freeze(&recorded.event) {
            self.whole.push(position);
        }
        self.entries.push(HistoryEntry::of(recorded, services));
    }
}
