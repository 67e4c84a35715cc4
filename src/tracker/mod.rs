//! The tracker port: look a ticket up before `decide`, so the rules stay pure.
//!
//! The bot asks a [`Tracker`] about the ticket of every `dobro` when `[tracker]` is configured
//! and hands the answer, a `TrackerFinding`, to the domain inside the request
//! (`domain::tracker` holds the rule). An adapter reports what the tracker said and never
//! decides: a 401 is `Misconfigured`, a timeout `Unavailable`, and whether either refuses the
//! request is the policy's call.
//!
//! Answers are reused for a short while ([`Cached`]): people often repeat a `dobro` after fixing
//! a typo, and a burst of requests should not become a burst against Jira's rate limit. Only
//! definite answers (found, not found) are kept; a failure is asked again next time, so a
//! recovered tracker is seen at once.

pub mod jira;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::config::{ConfigError, TrackerConfig, TrackerKind};
use crate::domain::{TicketKey, TrackerFinding};

/// Something that can say what it knows of a ticket. It always answers: a failure to ask is
/// an answer too (`Unavailable`, `Misconfigured`).
#[async_trait]
pub trait Tracker: Send + Sync {
    async fn lookup(&self, ticket: &TicketKey) -> TrackerFinding;
}

/// The tracker `[tracker]` describes, with its cache. A missing credential or a bad setting is
/// an error here, at start, not a surprise at the first `dobro`.
pub fn from_config(config: &TrackerConfig) -> Result<Arc<dyn Tracker>, ConfigError> {
    let tracker: Arc<dyn Tracker> = match config.kind {
        TrackerKind::Jira => Arc::new(jira::Jira::from_config(config)?),
    };
    let ttl = setting_duration("cache", &config.cache)?;
    if ttl.is_zero() {
        return Ok(tracker);
    }
    Ok(Arc::new(Cached::new(tracker, ttl)))
}

/// A duration setting of `[tracker]`, in the grammar of every duration in the config.
pub(crate) fn setting_duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    crate::domain::parse_duration(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| ConfigError::Tracker(format!("{key} = `{text}` is not a duration (3s, 1m)")))
}

/// Reuses definite answers for `ttl`.
pub struct Cached {
    inner: Arc<dyn Tracker>,
    ttl: Duration,
    answers: Mutex<HashMap<TicketKey, (Instant, TrackerFinding)>>,
}

impl Cached {
    pub fn new(inner: Arc<dyn Tracker>, ttl: Duration) -> Self {
        Cached {
            inner,
            ttl,
            answers: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, ticket: &TicketKey) -> Option<TrackerFinding> {
        let answers = self
            .answers
            .lock()
            .expect("the cache lock is never poisoned");
        answers
            .get(ticket)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, finding)| finding.clone())
    }

    fn keep(&self, ticket: &TicketKey, finding: &TrackerFinding) {
        let mut answers = self
            .answers
            .lock()
            .expect("the cache lock is never poisoned");
        // Dropping the stale entries on each write keeps the map as small as the last `ttl`.
        answers.retain(|_, (at, _)| at.elapsed() < self.ttl);
        answers.insert(ticket.clone(), (Instant::now(), finding.clone()));
    }
}

#[async_trait]
impl Tracker for Cached {
    async fn lookup(&self, ticket: &TicketKey) -> TrackerFinding {
        if let Some(finding) = self.fresh(ticket) {
            return finding;
        }
        let finding = self.inner.lookup(ticket).await;
        if matches!(finding, TrackerFinding::Found(_) | TrackerFinding::NotFound) {
            self.keep(ticket, &finding);
        }
        finding
    }
}
