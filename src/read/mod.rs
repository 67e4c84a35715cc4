//! The read side's questions, asked the same way by the CLI and the HTTP API: the filters, the
//! pages and the views over the read models. The rows are defined once (`rows`): their JSON is
//! their serde form on both fronts, their CSV the same columns.
//!
//! The listings are answered by the persisted models (`crate::models`), a page read from an
//! index (by ticket, service or actor) from a cursor (a ledger revision), so its cost grows
//! with the page, not with the ledger. A time (`since`, `until`, `at`) bounds the stretch of
//! the ledger read: the writer never records a time before the last event's, so the ledger is
//! in time order.

pub mod params;
pub mod report;
pub mod rows;
mod time;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use time::parse_time;

use rows::Row;

use crate::domain::state::Freeze;
use crate::domain::{Policy, QueueItem, ServiceName, TicketKey, UserId};
use crate::projections::live::LockView;
use crate::projections::{self, AsOf, Deployment, DeploymentOutcome, Live, ProjectionError};
use crate::store::EventStore;

/// A page's size unless the caller says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<u64>,
}

impl<T> Page<T> {
    /// The whole of a short listing (the queue, the locks): there is no next page.
    pub fn whole(items: Vec<T>) -> Page<T> {
        Page {
            items,
            next_cursor: None,
        }
    }
}

impl<T> Page<T> {
    /// A page of `items`, read in order up to one more than `limit`: the first `limit`, and the
    /// cursor after the last of them if more follow.
    pub fn of(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> u64) -> Page<T> {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// A record with the JSON the read models store it as, which is its serde form: written out,
/// it is that JSON as stored, not parsed and written again, and a page whose filter the index
/// already applied is not parsed at all (most of the cost of a page of a hundred deployments
/// was reading their JSON into records and writing it out again). The record is read when its
/// value is first asked for.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    json: Box<serde_json::value::RawValue>,
    value: std::sync::OnceLock<T>,
}

impl<T: Serialize + serde::de::DeserializeOwned> Stored<T> {
    /// The record stored as `json`, read now.
    pub fn read(json: &str) -> serde_json::Result<Stored<T>> {
        let stored = Stored::unread(json)?;
        stored.value()?;
        Ok(stored)
    }

    /// The record stored as `json` (checked to be JSON), read only if its value is asked for.
    pub fn unread(json: &str) -> serde_json::Result<Stored<T>> {
        Ok(Stored {
            json: serde_json::value::RawValue::from_string(json.to_string())?,
            value: std::sync::OnceLock::new(),
        })
    }

    /// A record that is not stored as it is (one folded again as of a past point).
    pub fn new(value: T) -> serde_json::Result<Stored<T>> {
        Ok(Stored {
            json: serde_json::value::to_raw_value(&value)?,
            value: std::sync::OnceLock::from(value),
        })
    }

    pub fn value(&self) -> serde_json::Result<&T> {
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let value = serde_json::from_str(self.json.get())?;
        Ok(self.value.get_or_init(|| value))
    }

    pub fn into_inner(self) -> serde_json::Result<T> {
        match self.value.into_inner() {
            Some(value) => Ok(value),
            None => serde_json::from_str(self.json.get()),
        }
    }
}

impl<T> Serialize for Stored<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl<T: Row + serde::de::DeserializeOwned> Row for Stored<T> {
    const HEADERS: &'static [&'static str] = T::HEADERS;

    fn check(&self) -> Result<(), String> {
        self.value().map(drop).map_err(|error| error.to_string())
    }

    /// Empty when the record cannot be read: `check` says so first.
    fn cells(&self) -> Vec<String> {
        self.value().map(Row::cells).unwrap_or_default()
    }
}

/// How a release ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    Open,
    Ended(DeploymentOutcome),
}

impl OutcomeFilter {
    pub const NAMES: [&'static str; 6] = [
        "open",
        "finished",
        "rolled_back",
        "abandoned",
        "cancelled",
        "rejected",
    ];

    pub fn parse(text: &str) -> Result<OutcomeFilter, String> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "open" => OutcomeFilter::Open,
            "finished" => OutcomeFilter::Ended(DeploymentOutcome::Finished),
            "rolled_back" | "rolledback" => OutcomeFilter::Ended(DeploymentOutcome::RolledBack),
            "abandoned" => OutcomeFilter::Ended(DeploymentOutcome::Abandoned),
            "cancelled" => OutcomeFilter::Ended(DeploymentOutcome::Cancelled),
            "rejected" => OutcomeFilter::Ended(DeploymentOutcome::Rejected),
            _ => {
                return Err(format!(
                    "`{text}` is not an outcome: one of {}",
                    Self::NAMES.join(", ")
                ));
            }
        })
    }

    /// The name `parse` takes.
    pub fn name(&self) -> &'static str {
        match self {
            OutcomeFilter::Open => "open",
            OutcomeFilter::Ended(DeploymentOutcome::Finished) => "finished",
            OutcomeFilter::Ended(DeploymentOutcome::RolledBack) => "rolled_back",
            OutcomeFilter::Ended(DeploymentOutcome::Abandoned) => "abandoned",
            OutcomeFilter::Ended(DeploymentOutcome::Cancelled) => "cancelled",
            OutcomeFilter::Ended(DeploymentOutcome::Rejected) => "rejected",
        }
    }

    fn matches(&self, d: &Deployment) -> bool {
        match self {
            OutcomeFilter::Open => d.outcome.is_none(),
            OutcomeFilter::Ended(outcome) => d.outcome == Some(*outcome),
        }
    }
}

/// Which release records a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    pub service: Option<ServiceName>,
    pub ticket: Option<TicketKey>,
    /// Anyone who took part: requester, approver, admin, who started or ended it.
    pub actor: Option<UserId>,
    pub outcome: Option<OutcomeFilter>,
    /// Something happened to it at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Requested at or before this time.
    pub until: Option<DateTime<Utc>>,
}

impl DeploymentFilter {
    pub fn matches(&self, d: &Deployment) -> bool {
        let took_part = |actor: &UserId| {
            [&d.approver, &d.admin, &d.started_by, &d.ended_by]
                .into_iter()
                .any(|who| who.as_ref() == Some(actor))
                || &d.requester == actor
        };
        self.service.as_ref().is_none_or(|s| d.touches(s))
            && self.ticket.as_ref().is_none_or(|t| &d.ticket == t)
            && self.actor.as_ref().is_none_or(took_part)
            && self.outcome.is_none_or(|o| o.matches(d))
            && self.since.is_none_or(|s| d.last_activity() >= s)
            && self.until.is_none_or(|u| d.requested_at <= u)
    }
}

/// The freeze, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FreezeView {
    pub frozen: bool,
    pub by: Option<UserId>,
    pub since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// The services frozen; `None` with `frozen`: every service.
    pub services: Option<Vec<ServiceName>>,
}

impl FreezeView {
    pub fn of(freeze: &Freeze) -> FreezeView {
        match freeze {
            Freeze::Off => FreezeView {
                frozen: false,
                by: None,
                since: None,
                reason: None,
                services: None,
            },
            Freeze::On {
                by,
                since,
                reason,
                services,
            } => FreezeView {
                frozen: true,
                by: Some(by.clone()),
                since: Some(*since),
                reason: Some(reason.to_string()),
                services: services.clone(),
            },
        }
    }
}

/// The queue, the locks and the freeze as they were at a time.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Replay {
    pub at: DateTime<Utc>,
    /// The last revision recorded by then.
    pub revision: Option<u64>,
    pub queue: Vec<QueueItem>,
    pub locks: Vec<LockView>,
    pub frozen: bool,
    pub freeze: FreezeView,
}

impl Replay {
    pub fn of(live: &Live, at: DateTime<Utc>, policy: &Policy) -> Replay {
        let freeze = FreezeView::of(live.freeze());
        Replay {
            at,
            revision: live.revision,
            queue: live.queue(policy),
            locks: live.locks(),
            frozen: freeze.frozen,
            freeze,
        }
    }
}

/// The live state (queue, locks, freeze) as of a point in the ledger: from the latest snapshot
/// at or before it (`crate::snapshots`), then the events after the snapshot up to the point, so
/// a question about 03:12 last March reads at most a snapshot's worth of events.
pub async fn live_as_of(
    store: &Arc<dyn EventStore>,
    stream: &str,
    as_of: AsOf,
) -> Result<Live, ProjectionError> {
    let (upto, until) = match as_of {
        AsOf::Latest => (None, None),
        AsOf::Revision(r) => (Some(r), None),
        AsOf::Time(t) => (None, Some(t)),
    };
    let mut live = Live::default();
    let mut from = 0;
    if let Some(snapshot) = crate::snapshots::latest(store, stream, upto, until).await {
        from = snapshot.revision + 1;
        live.revision = Some(snapshot.revision);
        live.state = snapshot.state;
    }
    projections::build_from(store, stream, from, as_of, &mut live).await?;
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_names_its_next_cursor_only_when_more_follow() {
        let numbers: Vec<u64> = (1..=5).collect();
        let first = Page::of(numbers[..3].to_vec(), 2, |n| *n);
        assert_eq!(first.items, [1, 2]);
        assert_eq!(first.next_cursor, Some(2));
        let last = Page::of(numbers[4..].to_vec(), 2, |n| *n);
        assert_eq!(last.items, [5]);
        assert_eq!(last.next_cursor, None);
        let exact = Page::of(numbers[3..].to_vec(), 2, |n| *n);
        assert_eq!(exact.next_cursor, None, "no empty page after an exact fit");
    }

    #[test]
    fn outcomes_parse_by_name() {
        assert_eq!(OutcomeFilter::parse("open").unwrap(), OutcomeFilter::Open);
        assert_eq!(
            OutcomeFilter::parse("Rolled_Back").unwrap(),
            OutcomeFilter::Ended(DeploymentOutcome::RolledBack)
        );
        let error = OutcomeFilter::parse("exploded").unwrap_err();
        assert!(error.contains("rolled_back"), "{error}");
    }
}
