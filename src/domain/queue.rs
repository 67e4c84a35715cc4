//! The live queue: every open request, its place in line and what it is waiting for.
//!
//! "Waiting for" is derived from `start_blockers`, the same rules `dep start` applies, so the
//! queue can never promise a start that the ledger would refuse.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::decide::start_blockers;
use super::policy::Policy;
use super::refusal::Refusal;
use super::state::{AdminPresence, Stage, State};
use super::types::{LockKey, ReleaseStatus, ServiceName, TicketKey, UserId, WikiLink};

/// One thing an open release waits for before it can start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Waiting {
    Approval,
    Admin,
    Freeze,
    Lock {
        lock: LockKey,
        ticket: TicketKey,
    },
    /// An earlier ready request goes first: it shares a service or a conflict group (`over`).
    Turn {
        ahead: TicketKey,
        over: LockKey,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueItem {
    pub ticket: TicketKey,
    pub services: Vec<ServiceName>,
    pub requester: UserId,
    pub status: ReleaseStatus,
    /// 1-based place in line: one more than the open requests made earlier for any of the same
    /// services or for a service in one of the same conflict groups (first come, first served
    /// spans a conflict group).
    pub position: usize,
    /// Empty when deploying or ready to start.
    pub waiting_for: Vec<Waiting>,
    pub approver: Option<UserId>,
    pub admin: Option<UserId>,
    pub need_admin: bool,
    pub wiki: Option<WikiLink>,
    pub comment: String,
}

/// The open requests in request order, by the policy recorded in `state` (`policy` when the
/// ledger recorded none).
pub fn queue(state: &State, policy: &Policy) -> Vec<QueueItem> {
    let policy = state.policy.as_deref().unwrap_or(policy);
    let open = state.in_order();
    open.iter()
        .enumerate()
        .map(|(i, release)| {
            let groups = policy.groups_of(&release.services);
            let position = 1 + open[..i]
                .iter()
                .filter(|earlier| {
                    earlier
                        .services
                        .iter()
                        .any(|s| release.services.contains(s))
                        || policy
                            .groups_of(&earlier.services)
                            .iter()
                            .any(|g| groups.contains(g))
                })
                .count();
            let waiting_for = start_blockers(state, release, policy)
                .into_iter()
                .filter_map(waiting)
                .collect();
            let approver = match &release.stage {
                Stage::Requested => None,
                Stage::Accepted { approver, .. } | Stage::Deploying { approver, .. } => {
                    Some(approver.clone())
                }
            };
            let admin = match &release.admin {
                AdminPresence::Joined { admin, .. } => Some(admin.clone()),
                _ => None,
            };
            QueueItem {
                ticket: release.ticket.clone(),
                services: release.services.clone(),
                requester: release.requester.clone(),
                status: release.status(),
                position,
                waiting_for,
                approver,
                admin,
                need_admin: !matches!(release.admin, AdminPresence::NotNeeded),
                wiki: release.wiki.clone(),
                comment: release.comment.clone(),
            }
        })
        .collect()
}

fn waiting(blocker: Refusal) -> Option<Waiting> {
    match blocker {
        Refusal::NotAccepted { .. } => Some(Waiting::Approval),
        Refusal::AdminRequired { .. } => Some(Waiting::Admin),
        Refusal::Frozen { .. } => Some(Waiting::Freeze),
        Refusal::LockHeld { lock, ticket, .. } => Some(Waiting::Lock { lock, ticket }),
        Refusal::NotYourTurn { ahead, over, .. } => Some(Waiting::Turn { ahead, over }),
        _ => None,
    }
}
