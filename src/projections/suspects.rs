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
    let from = at - window;
    let mut found: Vec<&Deployment> = deployments
        .all
        .iter()
        .filter(|d| d.started_at.is_some_and(|s| s <= at))
        .filter(|d| d.finished_at.is_none_or(|f| f >= from))
        .filter(|d| services.is_empty() || services.iter().any(|s| d.touches(s)))
        .collect();
    found.sort_by_key(|d| std::cmp::Reverse(d.last_revision));
    found
}
