//! What is true now: the open releases, the locks and the freeze, folded from the ledger.
//!
//! `evolve` never fails: an event is a fact, and a fact that does not fit (a finish for a
//! release that is not open, say, from a ledger written by another version) changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::Event;
use super::policy::Policy;
use super::refusal::Role;
use super::tracker::TicketInTracker;
use super::types::{
    LockKey, Reason, ReleaseStatus, ReminderKind, ServiceName, TicketKey, UserId, WikiLink,
};

/// Whether a release needs an admin, and who joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminPresence {
    NotNeeded,
    Needed,
    Joined { admin: UserId, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Requested,
    Accepted {
        approver: UserId,
        at: DateTime<Utc>,
    },
    Deploying {
        approver: UserId,
        by: UserId,
        since: DateTime<Utc>,
        /// The runner's last sign of life (`DeploymentAlive`), when it sends them.
        #[serde(default)]
        alive: Option<Alive>,
        /// A forced takeover proposed and waiting for its second person.
        #[serde(default)]
        takeover: Option<TakeoverProposal>,
    },
}

/// A forced takeover waiting for a second person (`TakeoverProposed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverProposal {
    pub by: UserId,
    pub reason: Reason,
    /// The role the second person needs.
    pub second: Role,
    pub at: DateTime<Utc>,
}

/// A deployment runner's last sign of life and when the next is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    pub at: DateTime<Utc>,
    pub within_secs: u64,
}

impl Alive {
    /// When the runner is overdue: its locks are stale from then on.
    pub fn due(&self) -> DateTime<Utc> {
        i64::try_from(self.within_secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|within| self.at.checked_add_signed(within))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// An open release: requested and not yet finished, rolled back, cancelled or rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub ticket: TicketKey,
    pub requester: UserId,
    pub services: Vec<ServiceName>,
    pub wiki: Option<WikiLink>,
    pub comment: String,
    pub requested_at: DateTime<Utc>,
    /// Request order: first requested, first served.
    pub seq: u64,
    pub stage: Stage,
    pub admin: AdminPresence,
    /// The reminders sent in the current stage (each kind belongs to one stage).
    pub reminders: BTreeSet<ReminderKind>,
    /// What the tracker said when the release was requested (its summary and status), so the
    /// release's message can show it; absent in snapshots from before there was a tracker.
    #[serde(default)]
    pub tracker: Option<TicketInTracker>,
}

impl Release {
    pub fn status(&self) -> ReleaseStatus {
        match self.stage {
            Stage::Requested => ReleaseStatus::Requested,
            Stage::Accepted { .. } => ReleaseStatus::Accepted,
            Stage::Deploying { .. } => ReleaseStatus::Deploying,
        }
    }

    pub fn admin_ready(&self) -> bool {
        !matches!(self.admin, AdminPresence::Needed)
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub ticket: TicketKey,
    pub by: UserId,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Freeze {
    Off,
    On {
        by: UserId,
        since: DateTime<Utc>,
        reason: Reason,
        /// `None`: every service.
        services: Option<Vec<ServiceName>>,
    },
}

impl Freeze {
    pub fn covers(&self, service: &ServiceName) -> bool {
        match self {
            Freeze::Off => false,
            Freeze::On { services: None, .. } => true,
            Freeze::On {
                services: Some(s), ..
            } => s.contains(service),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(with = "pairs")]
    pub releases: BTreeMap<TicketKey, Release>,
    /// Held locks; a key that is absent is free.
    #[serde(with = "pairs")]
    pub locks: BTreeMap<LockKey, Held>,
    pub freeze: Freeze,
    next_seq: u64,
    /// The rules last recorded (`PolicyChanged`); `None` in a ledger that recorded none.
    #[serde(default)]
    pub policy: Option<Arc<Policy>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            releases: BTreeMap::new(),
            locks: BTreeMap::new(),
            freeze: Freeze::Off,
            next_seq: 0,
            policy: None,
        }
    }
}

impl State {
    pub fn release(&self, ticket: &TicketKey) -> Option<&Release> {
        self.releases.get(ticket)
    }

    /// Open releases in request order.
    pub fn in_order(&self) -> Vec<&Release> {
        let mut open: Vec<&Release> = self.releases.values().collect();
        open.sort_by_key(|r| r.seq);
        open
    }

    /// Applies one recorded event, recorded at `at`.
    pub fn evolve(&mut self, event: &Event, at: DateTime<Utc>) {
        match event {
            Event::ReleaseRequested {
                ticket,
                requester,
                services,
                wiki,
                comment,
                need_admin,
                tracker,
            } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.releases.insert(
                    ticket.clone(),
                    Release {
                        ticket: ticket.clone(),
                        requester: requester.clone(),
                        services: services.clone(),
                        wiki: wiki.clone(),
                        comment: comment.clone(),
                        requested_at: at,
                        seq,
                        stage: Stage::Requested,
                        admin: if *need_admin {
                            AdminPresence::Needed
                        } else {
                            AdminPresence::NotNeeded
                        },
                        reminders: BTreeSet::new(),
                        tracker: tracker.clone(),
                    },
                );
            }
            Event::ReleaseApproved { ticket, approver } => {
                if let Some(r) = self.releases.get_mut(ticket) {
                    r.stage = Stage::Accepted {
                        approver: approver.clone(),
                        at,
                    };
                    r.reminders.clear();
                }
            }
            Event::AdminJoined { ticket, admin } => {
                if let Some(r) = self.releases.get_mut(ticket) {
                    r.admin = AdminPresence::Joined {
                        admin: admin.clone(),
                        at,
                    };
                }
            }
            Event::DeploymentStarted {
                ticket,
                by,
                services,
                conflict_groups,
            } => {
                if let Some(r) = self.releases.get_mut(ticket) {
                    let approver = match &r.stage {
                        Stage::Accepted { approver, .. } | Stage::Deploying { approver, .. } => {
                            approver.clone()
                        }
                        Stage::Requested => by.clone(),
                    };
                    r.stage = Stage::Deploying {
                        approver,
                        by: by.clone(),
                        since: at,
                        alive: None,
                        takeover: None,
                    };
                    r.reminders.clear();
                }
                let held = Held {
                    ticket: ticket.clone(),
                    by: by.clone(),
                    since: at,
                };
                let keys = services
                    .iter()
                    .cloned()
                    .map(LockKey::Service)
                    .chain(conflict_groups.iter().cloned().map(LockKey::Group));
                for key in keys {
                    self.locks.insert(key, held.clone());
                }
            }
            Event::DeploymentFinished { ticket, .. }
            | Event::DeploymentRolledBack { ticket, .. }
            | Event::DeploymentAbandoned { ticket, .. } => {
                self.releases.remove(ticket);
                self.locks.retain(|_, held| &held.ticket != ticket);
            }
            Event::ReleaseRejected { ticket, .. } | Event::ReleaseCancelled { ticket, .. } => {
                self.releases.remove(ticket);
            }
            Event::FreezeStarted {
                by,
                reason,
                services,
            } => {
                self.freeze = Freeze::On {
                    by: by.clone(),
                    since: at,
                    reason: reason.clone(),
                    services: services.clone(),
                };
            }
            Event::FreezeEnded { .. } => self.freeze = Freeze::Off,
            Event::PolicyChanged { policy, .. } => {
                self.policy = Some(Arc::new(Policy::clone(policy)));
            }
            Event::CommandRefused { .. } => {}
            Event::DeploymentAlive {
                ticket,
                within_secs,
                ..
            } => {
                if let Some(Release {
                    stage: Stage::Deploying { alive, .. },
                    ..
                }) = self.releases.get_mut(ticket)
                {
                    *alive = Some(Alive {
                        at,
                        within_secs: *within_secs,
                    });
                }
            }
            Event::TakeoverProposed {
                ticket,
                by,
                reason,
                second,
            } => {
                if let Some(Release {
                    stage: Stage::Deploying { takeover, .. },
                    ..
                }) = self.releases.get_mut(ticket)
                {
                    *takeover = Some(TakeoverProposal {
                        by: by.clone(),
                        reason: reason.clone(),
                        second: *second,
                        at,
                    });
                }
            }
            Event::ReminderSent { ticket, kind, .. } => {
                if let Some(r) = self.releases.get_mut(ticket)
                    && r.status() == kind.stage()
                {
                    r.reminders.insert(*kind);
                }
            }
        }
    }
}

/// A map as a list of `[key, value]` pairs: JSON object keys are strings, a lock key is not.
/// (The state is serialized for the writer's snapshots.)
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}
