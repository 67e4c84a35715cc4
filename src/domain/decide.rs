//! The rules of the release process: a command against the state gives events or a refusal.
//!
//! Each rule lives here once. What a queued release is waiting for is the list of reasons
//! `dep start` would be refused now (`start_blockers`), so the queue never restates a rule.

use chrono::{DateTime, Utc};

use super::command::{Command, ReleaseRequest};
use super::event::Event;
use super::policy::{Policy, changes};
use super::refusal::{Refusal, Role};
use super::state::{AdminPresence, Freeze, Release, Stage, State};
use super::types::{GroupName, LockKey, Reason, TicketKey, UserId};

/// Decides a command by `actor` at `at`. `Err` is a refusal, which the ledger records as a
/// `CommandRefused` event (see [`refused`]) unless it is a reminder's.
///
/// `at` is the time the command is decided, given as data (the ledger passes the recording
/// time of the batch, a scenario a fixed time), so `decide` stays pure: the same arguments give
/// the same answer. Only a rule about age reads it (a takeover needs a deployment old enough);
/// when a thing happened is still the ledger's recording time, not a field of the event.
pub fn decide(
    state: &State,
    actor: &UserId,
    command: &Command,
    policy: &Policy,
    at: DateTime<Utc>,
) -> Result<Vec<Event>, Refusal> {
    match command {
        Command::Request(request) => request_release(state, actor, request, policy),
        Command::Accept { ticket } => {
            let release = open(state, ticket)?;
            require(policy.is_approver(actor), Role::Approver)?;
            if policy.four_eyes && &release.requester == actor {
                return Err(Refusal::OwnRelease {
                    ticket: ticket.clone(),
                });
            }
            match &release.stage {
                Stage::Requested => Ok(vec![Event::ReleaseApproved {
                    ticket: ticket.clone(),
                    approver: actor.clone(),
                }]),
                Stage::Accepted { approver, .. } => Err(Refusal::AlreadyAccepted {
                    ticket: ticket.clone(),
                    approver: approver.clone(),
                }),
                Stage::Deploying { .. } => Err(already_deploying(ticket)),
            }
        }
        Command::Reject { ticket, reason } => {
            let release = open(state, ticket)?;
            require(policy.is_approver(actor), Role::Approver)?;
            not_deploying(release)?;
            Ok(vec![Event::ReleaseRejected {
                ticket: ticket.clone(),
                approver: actor.clone(),
                reason: reason.clone(),
            }])
        }
        Command::Cancel { ticket } => {
            let release = open(state, ticket)?;
            require(
                &release.requester == actor || policy.is_approver(actor),
                Role::RequesterOrApprover,
            )?;
            not_deploying(release)?;
            Ok(vec![Event::ReleaseCancelled {
                ticket: ticket.clone(),
                by: actor.clone(),
            }])
        }
        Command::Here { ticket } => {
            let release = open(state, ticket)?;
            require(policy.is_admin(actor), Role::Admin)?;
            not_deploying(release)?;
            match &release.admin {
                AdminPresence::NotNeeded => Err(Refusal::AdminNotNeeded {
                    ticket: ticket.clone(),
                }),
                AdminPresence::Joined { admin, .. } => Err(Refusal::AdminAlreadyJoined {
                    ticket: ticket.clone(),
                    admin: admin.clone(),
                }),
                AdminPresence::Needed => Ok(vec![Event::AdminJoined {
                    ticket: ticket.clone(),
                    admin: actor.clone(),
                }]),
            }
        }
        Command::Start { ticket } => {
            let release = open(state, ticket)?;
            require_requester_or_admin(release, actor, policy)?;
            // An admin who starts a release that waits for an admin joins it by starting it;
            // its requester still needs someone else, admin or not (the admin is the second
            // pair of eyes). Every other blocker still counts: then nothing is recorded but the
            // refusal, not a join on its own.
            let joins = release.admin == AdminPresence::Needed
                && policy.is_admin(actor)
                && &release.requester != actor;
            let first = start_blockers(state, release, policy)
                .into_iter()
                .find(|blocker| !(joins && matches!(blocker, Refusal::AdminRequired { .. })));
            if let Some(first) = first {
                return Err(first);
            }
            let join = joins.then(|| Event::AdminJoined {
                ticket: ticket.clone(),
                admin: actor.clone(),
            });
            Ok(join
                .into_iter()
                .chain([Event::DeploymentStarted {
                    ticket: ticket.clone(),
                    by: actor.clone(),
                    services: release.services.clone(),
                    conflict_groups: policy.groups_of(&release.services),
                }])
                .collect())
        }
        Command::Finish { ticket } => {
            let release = open(state, ticket)?;
            require_requester_or_admin(release, actor, policy)?;
            deploying(release)?;
            Ok(vec![Event::DeploymentFinished {
                ticket: ticket.clone(),
                by: actor.clone(),
            }])
        }
        Command::Rollback { ticket, reason } => {
            let release = open(state, ticket)?;
            require_requester_or_admin(release, actor, policy)?;
            deploying(release)?;
            Ok(vec![Event::DeploymentRolledBack {
                ticket: ticket.clone(),
                by: actor.clone(),
                reason: reason.clone(),
            }])
        }
        Command::Takeover { ticket, reason } => {
            let release = open(state, ticket)?;
            require(policy.is_admin(actor), Role::Admin)?;
            let since = deploying_since(release)?;
            let after_secs = policy.takeover_after_secs;
            let old_enough = i64::try_from(after_secs)
                .ok()
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|after| since.checked_add_signed(after))
                .is_some_and(|from| from <= at);
            if !old_enough {
                return Err(Refusal::TakeoverTooSoon {
                    ticket: ticket.clone(),
                    since,
                    after_secs,
                });
            }
            Ok(vec![Event::DeploymentAbandoned {
                ticket: ticket.clone(),
                by: actor.clone(),
                reason: reason.clone(),
                proposed_by: None,
            }])
        }
        Command::ForceTakeover { ticket, reason } => {
            let release = open(state, ticket)?;
            let (is_admin, is_approver) = (policy.is_admin(actor), policy.is_approver(actor));
            require(is_admin || is_approver, Role::AdminOrApprover)?;
            deploying_since(release)?;
            force_takeover(release, actor, reason.as_ref(), is_admin, is_approver)
        }
        Command::Alive { ticket, within } => {
            let release = open(state, ticket)?;
            require_requester_or_admin(release, actor, policy)?;
            deploying(release)?;
            Ok(vec![Event::DeploymentAlive {
                ticket: ticket.clone(),
                by: actor.clone(),
                within_secs: u64::try_from(within.num_seconds()).unwrap_or(0).max(1),
            }])
        }
        Command::Freeze { reason, services } => {
            require(policy.is_approver(actor), Role::Approver)?;
            if let Freeze::On { by, since, .. } = &state.freeze {
                return Err(Refusal::AlreadyFrozen {
                    by: by.clone(),
                    since: *since,
                });
            }
            Ok(vec![Event::FreezeStarted {
                by: actor.clone(),
                reason: reason.clone(),
                services: services.clone(),
            }])
        }
        Command::Unfreeze => {
            require(policy.is_approver(actor), Role::Approver)?;
            match state.freeze {
                Freeze::Off => Err(Refusal::NotFrozen),
                Freeze::On { .. } => Ok(vec![Event::FreezeEnded { by: actor.clone() }]),
            }
        }
        // When a reminder is due is `reminders::due`'s rule; this one keeps each to its stage
        // and to once per stage, whoever (whichever replica) asks.
        // Recorded only when it differs from the policy recorded last, so that every start of
        // every replica with the same config records nothing new.
        Command::AdoptPolicy(proposal) => {
            if state.policy.as_deref() == Some(&proposal.policy) {
                return Ok(Vec::new());
            }
            Ok(vec![Event::PolicyChanged {
                changes: changes(state.policy.as_deref(), &proposal.policy),
                policy: Box::new(proposal.policy.clone()),
                cause: proposal.cause,
                config_hash: proposal.config_hash.clone(),
                host: proposal.host.clone(),
                process: proposal.process,
                by: actor.clone(),
            }])
        }
        Command::Remind { ticket, kind } => {
            let release = open(state, ticket)?;
            if release.status() != kind.stage() {
                return Err(Refusal::ReminderOutOfStage {
                    ticket: ticket.clone(),
                    reminder: *kind,
                    status: release.status(),
                });
            }
            if release.reminders.contains(kind) {
                return Err(Refusal::AlreadyReminded {
                    ticket: ticket.clone(),
                    reminder: *kind,
                });
            }
            Ok(vec![Event::ReminderSent {
                ticket: ticket.clone(),
                kind: *kind,
                by: actor.clone(),
            }])
        }
    }
}

/// The event that records a refused command (for commands whose refusals are recorded, see
/// `Command::records_refusal`).
pub fn refused(actor: &UserId, command: &Command, refusal: Refusal) -> Event {
    Event::CommandRefused {
        by: actor.clone(),
        command: command.verb().to_string(),
        ticket: command.ticket().cloned(),
        refusal,
    }
}

/// Every reason `dep start` of an open release would be refused now, apart from who asks:
/// not accepted, no admin, a freeze, a held lock, an earlier ready request for a service or a
/// conflict group it shares.
pub fn start_blockers(state: &State, release: &Release, policy: &Policy) -> Vec<Refusal> {
    let ticket = &release.ticket;
    if let Stage::Deploying { .. } = release.stage {
        return vec![already_deploying(ticket)];
    }
    let mut blockers = Vec::new();
    if let Stage::Requested = release.stage {
        blockers.push(Refusal::NotAccepted {
            ticket: ticket.clone(),
        });
    }
    if !release.admin_ready() {
        blockers.push(Refusal::AdminRequired {
            ticket: ticket.clone(),
        });
    }
    if let Freeze::On {
        by,
        since,
        reason,
        services,
    } = &state.freeze
        && release.services.iter().any(|s| state.freeze.covers(s))
    {
        blockers.push(Refusal::Frozen {
            by: by.clone(),
            since: *since,
            reason: reason.clone(),
            services: services.clone(),
        });
    }
    let wanted = release
        .services
        .iter()
        .cloned()
        .map(LockKey::Service)
        .chain(
            policy
                .groups_of(&release.services)
                .into_iter()
                .map(LockKey::Group),
        );
    if let Some((lock, held)) = wanted
        .filter_map(|key| state.locks.get(&key).map(|held| (key, held)))
        .find(|(_, held)| &held.ticket != ticket)
    {
        blockers.push(Refusal::LockHeld {
            lock,
            ticket: held.ticket.clone(),
            by: held.by.clone(),
            since: held.since,
        });
    }
    // First come, first served over what two requests cannot deploy together: a service they
    // share, or a conflict group their services share.
    let groups = policy.groups_of(&release.services);
    let ahead = state.in_order().into_iter().find_map(|other| {
        let earlier_and_ready = other.seq < release.seq
            && matches!(other.stage, Stage::Accepted { .. })
            && other.admin_ready();
        earlier_and_ready
            .then(|| shared(other, release, &groups, policy))
            .flatten()
            .map(|over| (other, over))
    });
    if let Some((other, over)) = ahead {
        blockers.push(Refusal::NotYourTurn {
            ticket: ticket.clone(),
            ahead: other.ticket.clone(),
            over,
        });
    }
    blockers
}

/// What `other` and `release` cannot deploy together over: the first service they share, else
/// the first conflict group of `release` (its `groups`) that `other`'s services are in too.
fn shared(
    other: &Release,
    release: &Release,
    groups: &[GroupName],
    policy: &Policy,
) -> Option<LockKey> {
    if let Some(service) = other.services.iter().find(|s| release.services.contains(s)) {
        return Some(LockKey::Service(service.clone()));
    }
    let theirs = policy.groups_of(&other.services);
    groups
        .iter()
        .find(|g| theirs.contains(g))
        .map(|g| LockKey::Group(g.clone()))
}

fn request_release(
    state: &State,
    actor: &UserId,
    request: &ReleaseRequest,
    policy: &Policy,
) -> Result<Vec<Event>, Refusal> {
    let ticket = &request.ticket;
    if let Some(existing) = state.release(ticket) {
        return Err(Refusal::AlreadyOpen {
            ticket: ticket.clone(),
            status: existing.status(),
        });
    }
    let failures = policy.check(request);
    if !failures.is_empty() {
        return Err(Refusal::ChecksFailed {
            ticket: ticket.clone(),
            failures,
        });
    }
    Ok(vec![Event::ReleaseRequested {
        ticket: ticket.clone(),
        requester: actor.clone(),
        services: policy.services_for(request),
        wiki: request.wiki.clone(),
        comment: request.comment.clone(),
        need_admin: !request.no_need_admin,
        tracker: policy.in_tracker(request),
    }])
}

fn open<'s>(state: &'s State, ticket: &TicketKey) -> Result<&'s Release, Refusal> {
    state.release(ticket).ok_or_else(|| Refusal::NoOpenRequest {
        ticket: ticket.clone(),
    })
}

fn require(allowed: bool, role: Role) -> Result<(), Refusal> {
    if allowed {
        Ok(())
    } else {
        Err(Refusal::NotAllowed { role })
    }
}

fn require_requester_or_admin(
    release: &Release,
    actor: &UserId,
    policy: &Policy,
) -> Result<(), Refusal> {
    require(
        &release.requester == actor || policy.is_admin(actor),
        Role::RequesterOrAdmin,
    )
}

fn already_deploying(ticket: &TicketKey) -> Refusal {
    Refusal::AlreadyDeploying {
        ticket: ticket.clone(),
    }
}

fn not_deploying(release: &Release) -> Result<(), Refusal> {
    match release.stage {
        Stage::Deploying { .. } => Err(already_deploying(&release.ticket)),
        _ => Ok(()),
    }
}

/// When the release's deployment started, if it is deploying.
fn deploying_since(release: &Release) -> Result<DateTime<Utc>, Refusal> {
    match release.stage {
        Stage::Deploying { since, .. } => Ok(since),
        _ => Err(Refusal::NotDeploying {
            ticket: release.ticket.clone(),
        }),
    }
}

/// `dep takeover --force` by an admin or an approver: with no proposal pending, a reason
/// proposes one; with one pending, a second person holding the role its proposer lacks confirms
/// it (whatever they add is in the command's metadata; the reason is the proposer's).
fn force_takeover(
    release: &Release,
    actor: &UserId,
    reason: Option<&Reason>,
    is_admin: bool,
    is_approver: bool,
) -> Result<Vec<Event>, Refusal> {
    let ticket = &release.ticket;
    let pending = match &release.stage {
        Stage::Deploying { takeover, .. } => takeover.as_ref(),
        _ => None,
    };
    match (pending, reason) {
        (None, None) => Err(Refusal::NoTakeoverProposed {
            ticket: ticket.clone(),
        }),
        (None, Some(reason)) => Ok(vec![Event::TakeoverProposed {
            ticket: ticket.clone(),
            by: actor.clone(),
            reason: reason.clone(),
            second: Role::second_to(is_admin, is_approver),
        }]),
        (Some(proposal), _) if &proposal.by == actor => Err(Refusal::TakeoverAlreadyProposed {
            ticket: ticket.clone(),
            by: actor.clone(),
        }),
        (Some(proposal), _) => {
            let holds = match proposal.second {
                Role::Admin => is_admin,
                Role::Approver => is_approver,
                _ => is_admin || is_approver,
            };
            if !holds {
                return Err(Refusal::TakeoverNeedsSecond {
                    ticket: ticket.clone(),
                    proposed_by: proposal.by.clone(),
                    role: proposal.second,
                });
            }
            Ok(vec![Event::DeploymentAbandoned {
                ticket: ticket.clone(),
                by: actor.clone(),
                reason: proposal.reason.clone(),
                proposed_by: Some(proposal.by.clone()),
            }])
        }
    }
}

fn deploying(release: &Release) -> Result<(), Refusal> {
    match release.stage {
        Stage::Deploying { .. } => Ok(()),
        _ => Err(Refusal::NotDeploying {
            ticket: release.ticket.clone(),
        }),
    }
}
