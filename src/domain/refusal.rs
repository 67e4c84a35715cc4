//! Why a command was not carried out: a value with enough detail for a human reply.
//!
//! A refusal is not a failure of the program. It is recorded in the ledger (`CommandRefused`) so
//! the audit history shows who tried what and why it was not allowed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::{LockKey, Reason, ReleaseStatus, ReminderKind, ServiceName, TicketKey, UserId};

/// Who may do a thing, as named in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Approver,
    Admin,
    RequesterOrAdmin,
    RequesterOrApprover,
}

/// A formal sign of a well-prepared task that a request lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckFailure {
    /// The ticket key does not match the configured pattern.
    TicketPattern { pattern: String },
    /// No wiki or release-notes link was given, and config requires one.
    WikiLinkMissing,
    /// No `services=` was given and config maps the ticket's project to none.
    NoServices { project: String },
    /// The tracker has no such issue (or dobrobot's account may not see it).
    TicketNotFound,
    /// The issue's status is not one of the allowed ones (nor in an allowed category).
    StatusNotAllowed {
        status: String,
        statuses: Vec<String>,
        status_categories: Vec<String>,
    },
    /// The issue has no fix version.
    NoFixVersion,
    /// Nobody is assigned to the issue.
    NoAssignee,
    /// The issue's type is not one of the allowed ones.
    IssueTypeNotAllowed {
        issue_type: String,
        allowed: Vec<String>,
    },
    /// The issue carries none of the required labels (one of them is enough).
    LabelMissing { labels: Vec<String> },
    /// The tracker could not be asked (timeout, network, 5xx, rate limited), and config says to
    /// refuse then (`on_unavailable = "refuse"`).
    TrackerUnavailable { reason: String },
    /// The tracker refused dobrobot's credentials (401/403): a configuration error for the
    /// admins, with `on_unavailable = "refuse"`.
    TrackerMisconfigured { reason: String },
}

impl CheckFailure {
    /// Whether the tracker's answer found it (not the request as typed).
    pub fn is_tracker(&self) -> bool {
        !matches!(
            self,
            CheckFailure::TicketPattern { .. }
                | CheckFailure::WikiLinkMissing
                | CheckFailure::NoServices { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// `dobro` failed one or more ticket checks; each is named.
    ChecksFailed {
        ticket: TicketKey,
        failures: Vec<CheckFailure>,
    },
    /// The ticket already has an open request.
    AlreadyOpen {
        ticket: TicketKey,
        status: ReleaseStatus,
    },
    /// There is no open request for the ticket.
    NoOpenRequest {
        ticket: TicketKey,
    },
    /// The actor lacks the role the command needs.
    NotAllowed {
        role: Role,
    },
    /// Four-eyes: the requester cannot approve their own release.
    OwnRelease {
        ticket: TicketKey,
    },
    AlreadyAccepted {
        ticket: TicketKey,
        approver: UserId,
    },
    AdminNotNeeded {
        ticket: TicketKey,
    },
    AdminAlreadyJoined {
        ticket: TicketKey,
        admin: UserId,
    },
    NotAccepted {
        ticket: TicketKey,
    },
    AdminRequired {
        ticket: TicketKey,
    },
    /// A freeze covers one of the release's services.
    Frozen {
        by: UserId,
        since: DateTime<Utc>,
        reason: Reason,
        services: Option<Vec<ServiceName>>,
    },
    /// Another deployment holds a lock the release needs.
    LockHeld {
        lock: LockKey,
        ticket: TicketKey,
        by: UserId,
        since: DateTime<Utc>,
    },
    /// An earlier request for the same service is ready and goes first.
    NotYourTurn {
        ticket: TicketKey,
        ahead: TicketKey,
        service: ServiceName,
    },
    AlreadyDeploying {
        ticket: TicketKey,
    },
    NotDeploying {
        ticket: TicketKey,
    },
    AlreadyFrozen {
        by: UserId,
        since: DateTime<Utc>,
    },
    NotFrozen,
    /// A reminder about a stage the release is no longer (or not yet) in. Never recorded, like
    /// every refusal of a reminder (`Command::records_refusal`), so not in the schema either.
    ReminderOutOfStage {
        ticket: TicketKey,
        reminder: ReminderKind,
        status: ReleaseStatus,
    },
    /// The reminder was already sent in the release's current stage. Never recorded.
    AlreadyReminded {
        ticket: TicketKey,
        reminder: ReminderKind,
    },
}
