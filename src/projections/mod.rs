//! Read models folded from the ledger: the live state (queue and locks), deployments, history,
//! the waitlist, and the views over them (`who`, `suspects`). In a running process the follower
//! (`crate::follower`) keeps them current; the CLI builds them as of a point in the ledger.
//!
//! Every projection is a fold over decoded events in ledger order, so any of them can be built as
//! of a revision or a timestamp: `AsOf` cuts the ledger to the prefix that existed then. That is
//! the time travel a postmortem needs ("what was the queue at 03:12?"). The release rules are not
//! restated here: the queue and locks come from the domain's own `State` and `queue`.

pub mod deployments;
pub mod history;
pub mod live;
pub mod release;
pub mod suspects;
pub mod waitlist;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;

use futures::TryStreamExt;

use crate::envelope::{self, DecodeError, Recorded};
use crate::store::{EventStore, StoreError};

pub use deployments::{Deployment, DeploymentOutcome, Deployments};
pub use history::{History, HistoryEntry};
pub use live::Live;
pub use suspects::suspects;
pub use waitlist::Waitlist;

/// The point in the ledger a projection is built as of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsOf {
    #[default]
    Latest,
    /// Up to and including this revision.
    Revision(u64),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
}

impl AsOf {
    /// Whether the event at this point of the ledger is still part of the prefix.
    pub fn includes(&self, recorded: &Recorded) -> bool {
        match self {
            AsOf::Latest => true,
            AsOf::Revision(r) => recorded.revision <= *r,
            AsOf::Time(t) => recorded.metadata.recorded_at <= *t,
        }
    }
}

/// A read model: a fold over the ledger's events in order.
pub trait Projection {
    fn apply(&mut self, recorded: &Recorded);
}

#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Reads the stream from the start and feeds each event of the `as_of` prefix to `projection`.
/// Returns the last revision applied.
///
/// Generic rather than `&mut dyn Projection` so that the future is `Send` when the projection
/// is: the Slack front runs the bot's queries in spawned tasks.
pub async fn build<P: Projection + ?Sized>(
    store: &Arc<dyn EventStore>,
    stream: &str,
    as_of: AsOf,
    projection: &mut P,
) -> Result<Option<u64>, ProjectionError> {
    build_from(store, stream, 0, as_of, projection).await
}

/// `build` from revision `from` on, for a projection that already holds what came before (the
/// live state from a snapshot). Returns the last revision applied, if any.
pub async fn build_from<P: Projection + ?Sized>(
    store: &Arc<dyn EventStore>,
    stream: &str,
    from: u64,
    as_of: AsOf,
    projection: &mut P,
) -> Result<Option<u64>, ProjectionError> {
    let mut last = None;
    let mut pages = store.read_pages(stream, from);
    while let Some(page) = pages.try_next().await? {
        for raw in &page {
            let recorded = envelope::decode(raw)?;
            if !as_of.includes(&recorded) {
                return Ok(last);
            }
            projection.apply(&recorded);
            last = Some(recorded.revision);
        }
    }
    Ok(last)
}

/// Feeds one event to several projections.
impl<const N: usize> Projection for [&mut dyn Projection; N] {
    fn apply(&mut self, recorded: &Recorded) {
        for projection in self.iter_mut() {
            projection.apply(recorded);
        }
    }
}
