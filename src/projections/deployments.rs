//! Every release request and how it ended: who asked, who approved, which admin joined, when it
//! started and finished, and the outcome. One record per request, so a ticket requested again
//! after a rollback has two.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Projection;
use crate::domain::{Event, ServiceName, TicketKey, UserId};
use crate::envelope::Recorded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    Finished,
    RolledBack,
    Cancelled,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployments {
    /// In request order.
    pub all: Vec<Deployment>,
    open: HashMap<TicketKey, usize>,
}

impl Deployments {
    /// Those that started, most recent start first.
    pub fn started(&self) -> impl Iterator<Item = &Deployment> {
        let mut started: Vec<&Deployment> =
            self.all.iter().filter(|d| d.started_at.is_some()).collect();
        started.sort_by_key(|d| std::cmp::Reverse(d.started_at));
        started.into_iter()
    }

    /// `who SERVICE`: deployments of the service since `since`, most recent first.
    pub fn who(&self, service: &ServiceName, since: Option<DateTime<Utc>>) -> Vec<&Deployment> {
        self.started()
            .filter(|d| d.touches(service))
            .filter(|d| since.is_none_or(|s| d.last_activity() >= s))
            .collect()
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
        match &recorded.event {
            Event::ReleaseRequested {
                ticket,
                requester,
                services,
                ..
            } => {
                self.open.insert(ticket.clone(), self.all.len());
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
                if let Some(d) = self.open_mut(ticket) {
                    d.started_at = Some(at);
                    d.started_by = Some(by.clone());
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
