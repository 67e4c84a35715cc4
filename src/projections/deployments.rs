//! Every release request and how it ended: who asked, who approved, which admin joined, when it
//! started and finished, and the outcome. One record per request, so a ticket requested again
//! after a rollback has two.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Projection;
use crate::domain::{Event, ServiceName, TicketKey, UserId};
use crate::envelope::Recorded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    Finished,
    RolledBack,
    Cancelled,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Deployment {
    pub ticket: TicketKey,
    pub services: Vec<ServiceName>,
    pub requester: UserId,
    pub approver: Option<UserId>,
    pub admin: Option<UserId>,
    pub started_by: Option<UserId>,
    pub ended_by: Option<UserId>,
    pub requested_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `None` while the release is open.
    pub outcome: Option<DeploymentOutcome>,
    /// Why it was rolled back or rejected.
    pub reason: Option<String>,
    /// Started to finished (or rolled back), in seconds.
    pub duration_secs: Option<i64>,
    /// Requested to finished, in seconds.
    pub lead_time_secs: Option<i64>,
    /// Revision of the request event.
    pub revision: u64,
    /// Revision of its `DeploymentStarted`.
    pub started_revision: Option<u64>,
    /// Revision of the latest event about it.
    pub last_revision: u64,
}

impl Deployment {
    pub fn touches(&self, service: &ServiceName) -> bool {
        self.services.contains(service)
    }

    /// The latest moment something happened to it.
    pub fn last_activity(&self) -> DateTime<Utc> {
        self.finished_at
            .or(self.started_at)
            .or(self.accepted_at)
            .unwrap_or(self.requested_at)
    }
}

/// Positions in `Deployments::all`, in ledger order.
type Positions = Vec<usize>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployments {
    /// In request order.
    pub all: Vec<Deployment>,
    open: HashMap<TicketKey, usize>,
    /// Indexes, so that a question about one service or ticket reads only its records.
    by_service: HashMap<ServiceName, Positions>,
    by_ticket: HashMap<TicketKey, Positions>,
    /// Those that started, in start order; and per service.
    started: Positions,
    started_by_service: HashMap<ServiceName, Positions>,
}

impl Deployments {
    /// Those that started, most recent start first.
    pub fn started(&self) -> impl Iterator<Item = &Deployment> {
        self.started.iter().rev().map(|&i| &self.all[i])
    }

    /// `who SERVICE`: deployments of the service since `since`, most recent start first.
    pub fn who(&self, service: &ServiceName, since: Option<DateTime<Utc>>) -> Vec<&Deployment> {
        self.who_from(service, None)
            .filter(|d| since.is_none_or(|s| d.last_activity() >= s))
            .collect()
    }

    /// The started deployments of `service`, most recent start first, from those started before
    /// revision `before` (all when `None`).
    pub fn who_from<'a>(
        &'a self,
        service: &ServiceName,
        before: Option<u64>,
    ) -> impl Iterator<Item = &'a Deployment> + 'a {
        let positions = self
            .started_by_service
            .get(service)
            .map_or(&[][..], Vec::as_slice);
        let end = before.map_or(positions.len(), |before| {
            positions.partition_point(|&i| self.all[i].started_revision < Some(before))
        });
        positions[..end].iter().rev().map(|&i| &self.all[i])
    }

    /// Every record in request order from those requested after revision `after`; only the
    /// records of `service` or `ticket` when given (read from their index).
    pub fn from<'a>(
        &'a self,
        service: Option<&'a ServiceName>,
        ticket: Option<&'a TicketKey>,
        after: Option<u64>,
    ) -> Box<dyn Iterator<Item = &'a Deployment> + 'a> {
        let first = |positions: &[usize]| {
            after.map_or(0, |after| {
                positions.partition_point(|&i| self.all[i].revision <= after)
            })
        };
        let indexed = match (ticket, service) {
            (Some(ticket), _) => Some(self.by_ticket.get(ticket)),
            (None, Some(service)) => Some(self.by_service.get(service)),
            (None, None) => None,
        };
        match indexed {
            Some(positions) => {
                let positions = positions.map_or(&[][..], Vec::as_slice);
                Box::new(
                    positions[first(positions)..]
                        .iter()
                        .map(|&i| &self.all[i])
                        .filter(move |d| service.is_none_or(|s| d.touches(s))),
                )
            }
            None => {
                let start =
                    after.map_or(0, |after| self.all.partition_point(|d| d.revision <= after));
                Box::new(self.all[start..].iter())
            }
        }
    }

    fn open_mut(&mut self, ticket: &TicketKey) -> Option<&mut Deployment> {
        let index = *self.open.get(ticket)?;
        self.all.get_mut(index)
    }

    fn close(
        &mut self,
        ticket: &TicketKey,
        at: DateTime<Utc>,
        by: &UserId,
        outcome: DeploymentOutcome,
        reason: Option<String>,
    ) {
        if let Some(d) = self.open_mut(ticket) {
            d.outcome = Some(outcome);
            d.ended_by = Some(by.clone());
            d.reason = reason;
            if matches!(
                outcome,
                DeploymentOutcome::Finished | DeploymentOutcome::RolledBack
            ) {
                d.finished_at = Some(at);
                d.duration_secs = d.started_at.map(|s| (at - s).num_seconds());
                d.lead_time_secs = Some((at - d.requested_at).num_seconds());
            }
        }
        self.open.remove(ticket);
    }
}

impl Projection for Deployments {
    fn apply(&mut self, recorded: &Recorded) {
        let at = recorded.metadata.recorded_at;
        if let Some(d) = recorded.event.ticket().and_then(|t| self.open_mut(t)) {
            d.last_revision = recorded.revision;
        }
        match &recorded.event {
            Event::ReleaseRequested {
                ticket,
                requester,
                services,
                ..
            } => {
                let position = self.all.len();
                self.open.insert(ticket.clone(), position);
                self.by_ticket
                    .entry(ticket.clone())
                    .or_default()
                    .push(position);
                for service in services {
                    self.by_service
                        .entry(service.clone())
                        .or_default()
                        .push(position);
                }
                self.all.push(Deployment {
                    ticket: ticket.clone(),
                    services: services.clone(),
                    requester: requester.clone(),
                    approver: None,
                    admin: None,
                    started_by: None,
                    ended_by: None,
                    requested_at: at,
                    accepted_at: None,
                    started_at: None,
                    finished_at: None,
                    outcome: None,
                    reason: None,
                    duration_secs: None,
                    lead_time_secs: None,
                    revision: recorded.revision,
                    started_revision: None,
                    last_revision: recorded.revision,
                });
            }
            Event::ReleaseApproved { ticket, approver } => {
                if let Some(d) = self.open_mut(ticket) {
                    d.approver = Some(approver.clone());
                    d.accepted_at = Some(at);
                }
            }
            Event::AdminJoined { ticket, admin } => {
                if let Some(d) = self.open_mut(ticket) {
                    d.admin = Some(admin.clone());
                }
            }
            Event::DeploymentStarted { ticket, by, .. } => {
                let Some(&position) = self.open.get(ticket) else {
                    return;
                };
                let d = &mut self.all[position];
                d.started_at = Some(at);
                d.started_by = Some(by.clone());
                d.started_revision = Some(recorded.revision);
                self.started.push(position);
                for service in &d.services {
                    self.started_by_service
                        .entry(service.clone())
                        .or_default()
                        .push(position);
                }
            }
            Event::DeploymentFinished { ticket, by } => {
                self.close(ticket, at, by, DeploymentOutcome::Finished, None)
            }
            Event::DeploymentRolledBack { ticket, by, reason } => self.close(
                ticket,
                at,
                by,
                DeploymentOutcome::RolledBack,
                Some(reason.to_string()),
            ),
            Event::ReleaseCancelled { ticket, by } => {
                self.close(ticket, at, by, DeploymentOutcome::Cancelled, None)
            }
            Event::ReleaseRejected {
                ticket,
                approver,
                reason,
            } => self.close(
                ticket,
                at,
                approver,
                DeploymentOutcome::Rejected,
                Some(reason.to_string()),
            ),
            Event::FreezeStarted { .. }
            | Event::FreezeEnded { .. }
            | Event::CommandRefused { .. }
            | Event::ReminderSent { .. } => {}
        }
    }
}
