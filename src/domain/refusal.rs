//! Why a command was not carried out: a value with enough detail for a human reply.
//!
//! A refusal is not a failure of the program. It is recorded in the ledger (`CommandRefused`) so
//! the audit history shows who tried what and why it was not allowed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::types::{LockKey, Reason, ReleaseStatus, ReminderKind, ServiceName, TicketKey, UserId};

/// Who may do a thing, as named in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Approver,
    Admin,
    RequesterOrAdmin,
    RequesterOrApprover,
    /// Either role: who may propose a forced takeover, or confirm one proposed by someone who
    /// holds both.
    AdminOrApprover,
}

impl Role {
    /// The role a forced takeover's second person needs, given the first person's roles: the
    /// one they lack (an approver and an admin together), either if they hold both.
    pub fn second_to(is_admin: bool, is_approver: bool) -> Role {
        match (is_admin, is_approver) {
            (true, true) => Role::AdminOrApprover,
            (true, false) => Role::Approver,
            _ => Role::Admin,
        }
    }
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
    /// An earlier request is ready and goes first: it deploys a service of this one, or a
    /// service in one of its conflict groups.
    NotYourTurn {
        ticket: TicketKey,
        ahead: TicketKey,
        /// What the two cannot deploy together over: a shared service or conflict group.
        /// Refusals recorded before turns spanned conflict groups say `service: NAME`
        /// instead; they read as `over` that service.
        #[serde(alias = "service", deserialize_with = "turn_over")]
        over: LockKey,
    },
    AlreadyDeploying {
        ticket: TicketKey,
    },
    /// A takeover without `--force` waits until the deployment has run `after_secs` (the
    /// policy's `takeover_after`); it started at `since`.
    TakeoverTooSoon {
        ticket: TicketKey,
        since: DateTime<Utc>,
        after_secs: u64,
    },
    /// `dep takeover TICKET --force` without a reason confirms a proposal, and there is none.
    NoTakeoverProposed {
        ticket: TicketKey,
    },
    /// The person who proposed a forced takeover cannot confirm it too (four eyes).
    TakeoverAlreadyProposed {
        ticket: TicketKey,
        by: UserId,
    },
    /// Confirming a forced takeover needs the role its proposer lacks.
    TakeoverNeedsSecond {
        ticket: TicketKey,
        proposed_by: UserId,
        role: Role,
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

impl Refusal {
    /// Whether a `dep start` refused for this may start later by itself, as things change
    /// (`start_blockers`'s reasons): approval, an admin, a freeze, a lock, its turn.
    pub fn waiting_cures(&self) -> bool {
        matches!(
            self,
            Refusal::NotAccepted { .. }
                | Refusal::AdminRequired { .. }
                | Refusal::Frozen { .. }
                | Refusal::LockHeld { .. }
                | Refusal::NotYourTurn { .. }
        )
    }
}

/// `over` of a `NotYourTurn`, as recorded now (a lock key) or before turns spanned conflict
/// groups (a service name, under `service`).
fn turn_over<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LockKey, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Recorded {
        Key(LockKey),
        Service(ServiceName),
    }
    Ok(match Recorded::deserialize(deserializer)? {
        Recorded::Key(key) => key,
        Recorded::Service(service) => LockKey::Service(service),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_turn_recorded_over_a_service_name_still_reads() {
        let old = json!({"kind": "not_your_turn", "ticket": "PAY-2", "ahead": "PAY-1",
                         "service": "billing"});
        let expected = Refusal::NotYourTurn {
            ticket: TicketKey::parse("PAY-2").unwrap(),
            ahead: TicketKey::parse("PAY-1").unwrap(),
            over: LockKey::Service(ServiceName::parse("billing").unwrap()),
        };
        assert_eq!(serde_json::from_value::<Refusal>(old).unwrap(), expected);
        let now = serde_json::to_value(&expected).unwrap();
        assert_eq!(now["over"], json!({"kind": "service", "name": "billing"}));
        assert_eq!(serde_json::from_value::<Refusal>(now).unwrap(), expected);
        let group = json!({"kind": "not_your_turn", "ticket": "PAY-2", "ahead": "API-1",
                           "over": {"kind": "group", "name": "backend-core"}});
        assert!(matches!(
            serde_json::from_value::<Refusal>(group).unwrap(),
            Refusal::NotYourTurn {
                over: LockKey::Group(_),
                ..
            }
        ));
    }
}
