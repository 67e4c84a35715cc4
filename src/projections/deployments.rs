//! Every release request and how it ended: who asked, who approved, which admin joined, when it
//! started and finished, and the outcome. One record per request, so a ticket requested again
//! after a rollback has two.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Projection;
use crate::domain::{Event, Refusal, ServiceName, TicketKey, UserId};
use crate::envelope::Recorded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    Finished,
    RolledBack,
    /// Ended by a takeover (`DeploymentAbandoned`): its runner never said how it went.
    Abandoned,
    Cancelled,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// The request said it needs an admin.
    #[serde(default)]
    pub need_admin: bool,
    /// When the admin joined.
    #[serde(default)]
    pub admin_joined_at: Option<DateTime<Utc>>,
    /// When a `dep start` of it was first refused because another deployment held a lock it
    /// needs: from then until its start, it waited for a lock.
    #[serde(default)]
    pub lock_wait_from: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When it ended, however it ended (finished, rolled back, cancelled, rejected).
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// `None` while the release is open.
    pub outcome: Option<DeploymentOutcome>,
    /// Why it was rolled back, abandoned or rejected.
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
        self.ended_at
            .or(self.finished_at)
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
    /// Those that started, in start order, per service.
    started_by_service: HashMap<ServiceName, Vec<usize>>,
}

impl Deployments {
    /// `who SERVICE`: deployments of the service since `since`, most recent start first.
    pub fn who(&self, service: &ServiceName, since: Option<DateTime<Utc>>) -> Vec<&Deployment> {
        let positions = self
            .started_by_service
            .get(service)
            .map_or(&[][..], Vec::as_slice);
        positions
            .iter()
            .rev()
            .map(|&i| &self.all[i])
            .filter(|d| since.is_none_or(|s| d.last_activity() >= s))
            .collect()
    }
}

impl Deployment {
    /// The record a `ReleaseRequested` opens; `None` for any other event.
    pub fn requested(revision: u64, at: DateTime<Utc>, event: &Event) -> Option<Deployment> {
        let Event::ReleaseRequested {
            ticket,
            requester,
            services,
            need_admin,
            ..
        } = event
        else {
            return None;
        };
        Some(Deployment {
            ticket: ticket.clone(),
            services: services.clone(),
            requester: requester.clone(),
            approver: None,
            admin: None,
            started_by: None,
            ended_by: None,
            requested_at: at,
            accepted_at: None,
            need_admin: *need_admin,
            admin_joined_at: None,
            lock_wait_from: None,
            started_at: None,
            finished_at: None,
            ended_at: None,
            outcome: None,
            reason: None,
            duration_secs: None,
            lead_time_secs: None,
            revision,
            started_revision: None,
            last_revision: revision,
        })
    }

    /// Applies an event about this record's ticket while the record is open. Whether it is still
    /// open afterwards: an ending closes it, and a new request of the ticket takes its place.
    /// Every model of deployments (in memory, persisted, as of a past revision) folds with this.
    pub fn apply(&mut self, revision: u64, at: DateTime<Utc>, event: &Event) -> bool {
        self.last_revision = revision;
        match event {
            Event::ReleaseRequested { .. } => return false,
            Event::ReleaseApproved { approver, .. } => {
                self.approver = Some(approver.clone());
                self.accepted_at = Some(at);
            }
            Event::AdminJoined { admin, .. } => {
                self.admin = Some(admin.clone());
                self.admin_joined_at = Some(at);
            }
            Event::DeploymentStarted { by, .. } => {
                self.started_at = Some(at);
                self.started_by = Some(by.clone());
                self.started_revision = Some(revision);
            }
            Event::DeploymentFinished { by, .. } => {
                self.close(at, by, DeploymentOutcome::Finished, None);
                return false;
            }
            Event::DeploymentRolledBack { by, reason, .. } => {
                let reason = Some(reason.to_string());
                self.close(at, by, DeploymentOutcome::RolledBack, reason);
                return false;
            }
            Event::DeploymentAbandoned { by, reason, .. } => {
                let reason = Some(reason.to_string());
                self.close(at, by, DeploymentOutcome::Abandoned, reason);
                return false;
            }
            Event::ReleaseCancelled { by, .. } => {
                self.close(at, by, DeploymentOutcome::Cancelled, None);
                return false;
            }
            Event::ReleaseRejected {
                approver, reason, ..
            } => {
                let reason = Some(reason.to_string());
                self.close(at, approver, DeploymentOutcome::Rejected, reason);
                return false;
            }
            Event::CommandRefused {
                refusal: Refusal::LockHeld { .. },
                ..
            } if self.started_at.is_none() => {
                self.lock_wait_from.get_or_insert(at);
            }
            Event::FreezeStarted { .. }
            | Event::FreezeEnded { .. }
            | Event::CommandRefused { .. }
            | Event::ReminderSent { .. }
            | Event::DeploymentAlive { .. }
            | Event::TakeoverProposed { .. }
            | Event::PolicyChanged { .. } => {}
        }
        true
    }

    fn close(
        &mut self,
        at: DateTime<Utc>,
        by: &UserId,
        outcome: DeploymentOutcome,
        reason: Option<String>,
    ) {
        self.outcome = Some(outcome);
        self.ended_at = Some(at);
        self.ended_by = Some(by.clone());
        self.reason = reason;
        if matches!(
            outcome,
            DeploymentOutcome::Finished
                | DeploymentOutcome::RolledBack
                | DeploymentOutcome::Abandoned
        ) {
            self.finished_at = Some(at);
            self.duration_secs = self.started_at.map(|s| (at - s).num_seconds());
            self.lead_time_secs = Some((at - self.requested_at).num_seconds());
        }
    }
}

impl Projection for Deployments {
    fn apply(&mut self, recorded: &Recorded) {
        let (revision, at) = (recorded.revision, recorded.metadata.recorded_at);
        let event = &recorded.event;
        if let Some(ticket) = event.ticket()
            && let Some(&position) = self.open.get(ticket)
        {
            let d = &mut self.all[position];
            let was_started = d.started_revision.is_some();
            let open = d.apply(revision, at, event);
            if !was_started && d.started_revision.is_some() {
                for service in &d.services {
                    self.started_by_service
                        .entry(service.clone())
                        .or_default()
                        .push(position);
                }
            }
            if !open {
                self.open.remove(ticket);
            }
        }
        if let Some(deployment) = Deployment::requested(revision, at, event) {
            self.open.insert(deployment.ticket.clone(), self.all.len());
            self.all.push(deployment);
        }
    }
}
