//! Where one release stands, as the fronts show it: open (requested, accepted, deploying, with
//! its admin) or how it ended. Built from the live state for an open release and from the
//! closing event for an ended one, so that a front never restates the release rules.

use chrono::{DateTime, Utc};

use crate::domain::state::{AdminPresence, Release, Stage};
use crate::domain::{Event, Reason, UserId};

/// Where a release stands, as its message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Requested {
        admin: Admin,
    },
    Accepted {
        approver: UserId,
        admin: Admin,
    },
    Deploying {
        by: UserId,
        since: DateTime<Utc>,
    },
    Finished {
        by: UserId,
    },
    RolledBack {
        by: UserId,
        reason: Reason,
    },
    /// Taken over (`dep takeover`): `proposed_by` on a forced one.
    Abandoned {
        by: UserId,
        reason: Reason,
        proposed_by: Option<UserId>,
    },
    Rejected {
        by: UserId,
        reason: Reason,
    },
    Cancelled {
        by: UserId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    NotNeeded,
    Needed,
    Joined(UserId),
}

impl Status {
    /// An open release's status.
    pub fn of(release: &Release) -> Status {
        let admin = match &release.admin {
            AdminPresence::NotNeeded => Admin::NotNeeded,
            AdminPresence::Needed => Admin::Needed,
            AdminPresence::Joined { admin, .. } => Admin::Joined(admin.clone()),
        };
        match &release.stage {
            Stage::Requested => Status::Requested { admin },
            Stage::Accepted { approver, .. } => Status::Accepted {
                approver: approver.clone(),
                admin,
            },
            Stage::Deploying { by, since, .. } => Status::Deploying {
                by: by.clone(),
                since: *since,
            },
        }
    }

    /// How `event` closed a release, if it did.
    pub fn closed_by(event: &Event) -> Option<Status> {
        match event {
            Event::DeploymentFinished { by, .. } => Some(Status::Finished { by: by.clone() }),
            Event::DeploymentRolledBack { by, reason, .. } => Some(Status::RolledBack {
                by: by.clone(),
                reason: reason.clone(),
            }),
            Event::DeploymentAbandoned {
                by,
                reason,
                proposed_by,
                ..
            } => Some(Status::Abandoned {
                by: by.clone(),
                reason: reason.clone(),
                proposed_by: proposed_by.clone(),
            }),
            Event::ReleaseRejected {
                approver, reason, ..
            } => Some(Status::Rejected {
                by: approver.clone(),
                reason: reason.clone(),
            }),
            Event::ReleaseCancelled { by, .. } => Some(Status::Cancelled { by: by.clone() }),
            _ => None,
        }
    }
}
