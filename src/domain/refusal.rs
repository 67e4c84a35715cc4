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
    /// A check from an external tracker (kept open for the tracker port).
    Tracker { name: String, detail: String },
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
