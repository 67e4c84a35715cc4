//! The live state: open releases, locks and the freeze, as the domain folds them. The queue and
//! the locks listings are views of it; the rules that say what a release waits for stay in
//! `domain::decide`.

use serde::Serialize;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

use super::Projection;
use crate::domain::LockKey;
use crate::domain::state::{Freeze, Stage};
use crate::domain::{Policy, QueueItem, State, TicketKey, UserId, queue};
use crate::envelope::Recorded;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub state: State,
    pub revision: Option<u64>,
}

/// One held lock, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LockView {
    pub lock: LockKey,
    pub ticket: TicketKey,
    pub by: UserId,
    pub since: DateTime<Utc>,
    /// When the deployment's runner (`dobrobot deploy`) owes its next sign of life; after it
    /// the lock is stale. Absent for a deployment run by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alive_until: Option<DateTime<Utc>>,
}

impl Live {
    pub fn queue(&self, policy: &Policy) -> Vec<QueueItem> {
        queue(&self.state, policy)
    }

    pub fn locks(&self) -> Vec<LockView> {
        locks(&self.state)
    }

    pub fn freeze(&self) -> &Freeze {
        &self.state.freeze
    }
}

pub fn locks(state: &State) -> Vec<LockView> {
    state
        .locks
        .iter()
        .map(|(lock, held)| LockView {
            lock: lock.clone(),
            ticket: held.ticket.clone(),
            by: held.by.clone(),
            since: held.since,
            alive_until: state.release(&held.ticket).and_then(|r| match &r.stage {
                Stage::Deploying { alive, .. } => alive.map(|a| a.due()),
                _ => None,
            }),
        })
        .collect()
}

impl Projection for Live {
    fn apply(&mut self, recorded: &Recorded) {
        self.state
            .evolve(&recorded.event, recorded.metadata.recorded_at);
        self.revision = Some(recorded.revision);
    }
}
