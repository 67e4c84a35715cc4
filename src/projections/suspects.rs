//! Suspects: the deployments that were running, or that started, finished or rolled back, on the
//! given services in the window before time T. Built from the deployments projection as of T, so
//! nothing recorded after T can appear.

use chrono::{DateTime, Duration, Utc};

use super::deployments::{Deployment, Deployments};
use crate::domain::ServiceName;

/// Most recent activity first (in ledger order, which a clock cannot skew).
pub fn suspects<'d>(
    deployments: &'d Deployments,
    at: DateTime<Utc>,
    window: Duration,
    services: &[ServiceName],
) -> Vec<&'d Deployment> {
    let mut found: Vec<&Deployment> = deployments
        .all
        .iter()
        .filter(|d| is_suspect(d, at, window, services))
        .collect();
    found.sort_by_key(|d| std::cmp::Reverse(d.last_revision));
    found
}

/// Whether a deployment (as of `at`) was running, or started or ended, on one of `services`
/// (any, when empty) in the `window` before `at`.
pub fn is_suspect(
    d: &Deployment,
    at: DateTime<Utc>,
    window: Duration,
    services: &[ServiceName],
) -> bool {
    let from = at - window;
    d.started_at.is_some_and(|s| s <= at)
        && d.finished_at.is_none_or(|f| f >= from)
        && (services.is_empty() || services.iter().any(|s| d.touches(s)))
}
