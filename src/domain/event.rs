//! What happened: the facts recorded in the ledger, in past tense.
//!
//! Serialized adjacently tagged (`{"type": "...", "data": {...}}`) so that the store keeps the
//! type name and the data apart, as EventStoreDB does; `schemas/<Type>.json` describes `data`.
//! When an event is recorded comes from its metadata, not from the event: `decide` is given the
//! time as data, and the events it returns never carry a clock reading of their own.

use serde::{Deserialize, Serialize};

use super::command::PolicyCause;
use super::policy::Policy;
use super::refusal::{Refusal, Role};
use super::tracker::TicketInTracker;
use super::types::{GroupName, Reason, ReminderKind, ServiceName, TicketKey, UserId, WikiLink};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    ReleaseRequested {
        ticket: TicketKey,
        requester: UserId,
        services: Vec<ServiceName>,
        wiki: Option<WikiLink>,
        comment: String,
        need_admin: bool,
        /// What the tracker said of the ticket, with a tracker configured: its summary, status
        /// and the checks made, or which checks were not made and why. Absent without a tracker
        /// (and in events recorded before there was one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracker: Option<TicketInTracker>,
    },
    ReleaseApproved {
        ticket: TicketKey,
        approver: UserId,
    },
    ReleaseRejected {
        ticket: TicketKey,
        approver: UserId,
        reason: Reason,
    },
    ReleaseCancelled {
        ticket: TicketKey,
        by: UserId,
    },
    AdminJoined {
        ticket: TicketKey,
        admin: UserId,
    },
    DeploymentStarted {
        ticket: TicketKey,
        by: UserId,
        services: Vec<ServiceName>,
        /// The conflict groups locked with the services, resolved from config when it started,
        /// so that replaying the ledger never depends on today's config.
        conflict_groups: Vec<GroupName>,
    },
    DeploymentFinished {
        ticket: TicketKey,
        by: UserId,
    },
    DeploymentRolledBack {
        ticket: TicketKey,
        by: UserId,
        reason: Reason,
    },
    /// A deployment was ended by someone other than its runner (`dep takeover`): its locks are
    /// free and its release is closed, as after a rollback, and what it left half-done is the
    /// reason's to say.
    DeploymentAbandoned {
        ticket: TicketKey,
        /// The admin who took it over, or the second person who confirmed a forced takeover.
        by: UserId,
        reason: Reason,
        /// On a forced takeover: who proposed it (and gave the reason). `None`: an admin took
        /// over a deployment older than the policy's minimum alone.
        proposed_by: Option<UserId>,
    },
    /// A forced takeover of a deployment was proposed (`dep takeover TICKET --force <reason>`)
    /// and waits for a second person who holds `second`.
    TakeoverProposed {
        ticket: TicketKey,
        by: UserId,
        reason: Reason,
        /// The role the confirming person needs, from the proposer's roles when proposed.
        second: Role,
    },
    /// The runner of a deployment (`dobrobot deploy`) is alive and promises its next sign of
    /// life within `within_secs`; a deployment that misses it has its locks flagged stale.
    DeploymentAlive {
        ticket: TicketKey,
        by: UserId,
        within_secs: u64,
    },
    FreezeStarted {
        by: UserId,
        reason: Reason,
        /// `None` freezes every service.
        services: Option<Vec<ServiceName>>,
    },
    FreezeEnded {
        by: UserId,
    },
    CommandRefused {
        by: UserId,
        /// The command's verb (`dep start`); the full text is in the metadata.
        command: String,
        ticket: Option<TicketKey>,
        refusal: Refusal,
    },
    /// A reminder about the release's current stage went out (`domain::reminders`); at most
    /// one of each kind per stage.
    ReminderSent {
        ticket: TicketKey,
        kind: ReminderKind,
        /// The system actor.
        by: UserId,
    },
    /// The rules changed: recorded whole (so that a replay needs nothing else), with what
    /// changed in words, from where (`cause`, the config file's hash, the host and process).
    /// Commands after it are decided by it.
    PolicyChanged {
        policy: Box<Policy>,
        changes: Vec<String>,
        cause: PolicyCause,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_hash: Option<String>,
        host: String,
        process: u32,
        /// The system actor.
        by: UserId,
    },
}

impl Event {
    /// Every event type name, in the order of the enum: one schema file each.
    pub const TYPES: [&'static str; 16] = [
        "ReleaseRequested",
        "ReleaseApproved",
        "ReleaseRejected",
        "ReleaseCancelled",
        "AdminJoined",
        "DeploymentStarted",
        "DeploymentFinished",
        "DeploymentRolledBack",
        "FreezeStarted",
        "FreezeEnded",
        "CommandRefused",
        "ReminderSent",
        "DeploymentAlive",
        "DeploymentAbandoned",
        "TakeoverProposed",
        "PolicyChanged",
    ];

    pub fn type_name(&self) -> &'static str {
        let index = match self {
            Event::ReleaseRequested { .. } => 0,
            Event::ReleaseApproved { .. } => 1,
            Event::ReleaseRejected { .. } => 2,
            Event::ReleaseCancelled { .. } => 3,
            Event::AdminJoined { .. } => 4,
            Event::DeploymentStarted { .. } => 5,
            Event::DeploymentFinished { .. } => 6,
            Event::DeploymentRolledBack { .. } => 7,
            Event::FreezeStarted { .. } => 8,
            Event::FreezeEnded { .. } => 9,
            Event::CommandRefused { .. } => 10,
            Event::ReminderSent { .. } => 11,
            Event::DeploymentAlive { .. } => 12,
            Event::DeploymentAbandoned { .. } => 13,
            Event::TakeoverProposed { .. } => 14,
            Event::PolicyChanged { .. } => 15,
        };
        Self::TYPES[index]
    }

    /// The ticket the event is about, if any.
    pub fn ticket(&self) -> Option<&TicketKey> {
        match self {
            Event::ReleaseRequested { ticket, .. }
            | Event::ReleaseApproved { ticket, .. }
            | Event::ReleaseRejected { ticket, .. }
            | Event::ReleaseCancelled { ticket, .. }
            | Event::AdminJoined { ticket, .. }
            | Event::DeploymentStarted { ticket, .. }
            | Event::DeploymentFinished { ticket, .. }
            | Event::DeploymentRolledBack { ticket, .. }
            | Event::ReminderSent { ticket, .. }
            | Event::DeploymentAlive { ticket, .. }
            | Event::DeploymentAbandoned { ticket, .. }
            | Event::TakeoverProposed { ticket, .. } => Some(ticket),
            Event::CommandRefused { ticket, .. } => ticket.as_ref(),
            Event::FreezeStarted { .. }
            | Event::FreezeEnded { .. }
            | Event::PolicyChanged { .. } => None,
        }
    }

    /// The person the event names as its doer.
    pub fn actor(&self) -> &UserId {
        match self {
            Event::ReleaseRequested { requester, .. } => requester,
            Event::ReleaseApproved { approver, .. } | Event::ReleaseRejected { approver, .. } => {
                approver
            }
            Event::AdminJoined { admin, .. } => admin,
            Event::ReleaseCancelled { by, .. }
            | Event::DeploymentStarted { by, .. }
            | Event::DeploymentFinished { by, .. }
            | Event::DeploymentRolledBack { by, .. }
            | Event::FreezeStarted { by, .. }
            | Event::FreezeEnded { by }
            | Event::CommandRefused { by, .. }
            | Event::ReminderSent { by, .. }
            | Event::DeploymentAlive { by, .. }
            | Event::DeploymentAbandoned { by, .. }
            | Event::TakeoverProposed { by, .. }
            | Event::PolicyChanged { by, .. } => by,
        }
    }
}
