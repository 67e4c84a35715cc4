//! Delivery figures from the release records: per service and per period (a day, a week, or
//! the whole range), the figures delivery teams track (the DORA set, with the waits a release
//! bot sees on top). Pure: the records are read by `models::Reader::report`, computed here.
//!
//! How each is computed (the README says the same):
//! - a deployment counts in the period it ended in: finished or rolled back (`finished_at`);
//! - `deployments`: those that ended, `rollbacks`: those rolled back, and the change-failure
//!   rate `rollbacks / deployments`;
//! - `lead_time`: request to finish, over the finished ones;
//! - `approval_wait`: request to approval; `admin_wait`: approval to the admin joining, over
//!   those that needed an admin; `lock_wait`: the first `dep start` refused because another
//!   deployment held a lock it needs, to its start, over those that were refused so;
//! - `time_to_restore`: a rollback to the next finished deployment of the service (for all
//!   services together, until every service it touched had one); a rollback with none yet is
//!   counted as `unrestored`;
//! - medians and 90th percentiles by nearest rank: the value at rank ⌈p·n⌉ of the n sorted
//!   values (so the median of an even count is the lower middle value).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, DurationRound, SubsecRound, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ServiceName;
use crate::projections::{Deployment, DeploymentOutcome};

/// How the range is cut into periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Per {
    Day,
    /// ISO weeks, from Monday 00:00 UTC.
    #[default]
    Week,
    /// The whole range, one period.
    Range,
}

impl Per {
    pub const NAMES: [&'static str; 3] = ["day", "week", "range"];

    pub fn parse(text: &str) -> Result<Per, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" => Ok(Per::Day),
            "week" => Ok(Per::Week),
            "range" => Ok(Per::Range),
            _ => Err(format!(
                "`{text}` is not a period: one of {}",
                Per::NAMES.join(", ")
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Per::Day => "day",
            Per::Week => "week",
            Per::Range => "range",
        }
    }
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    pub since: DateTime<Utc>,
    /// Exclusive.
    pub until: DateTime<Utc>,
    /// One service; every service (and all together) when `None`.
    pub service: Option<ServiceName>,
    pub per: Per,
}

/// The most periods a report has: a day at a time, about three years.
pub const MAX_PERIODS: usize = 1100;

impl ReportQuery {
    /// The query for `[since, until)`, both widened to whole seconds (a relative `30d` is
    /// counted from now, to the nanosecond; a report reads better from a whole second).
    pub fn new(
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        service: Option<ServiceName>,
        per: Per,
    ) -> ReportQuery {
        let since = since.trunc_subsecs(0);
        let whole = until.trunc_subsecs(0);
        let until = if whole < until {
            whole + Duration::seconds(1)
        } else {
            whole
        };
        ReportQuery {
            since,
            until,
            service,
            per,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if self.until <= self.since {
            return Err(format!(
                "the range is empty: {} is not before {}",
                self.since.to_rfc3339(),
                self.until.to_rfc3339()
            ));
        }
        let periods = self.periods();
        if periods.len() > MAX_PERIODS {
            return Err(format!(
                "{} periods of a {}: at most {MAX_PERIODS}; ask per week or for a shorter range",
                periods.len(),
                self.per.name()
            ));
        }
        Ok(())
    }

    /// The periods, `[start, end)`, in order: whole days or weeks, the first and last cut to
    /// the range.
    pub fn periods(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let step = match self.per {
            Per::Range => return vec![(self.since, self.until)],
            Per::Day => Duration::days(1),
            Per::Week => Duration::weeks(1),
        };
        let day = self
            .since
            .duration_trunc(Duration::days(1))
            .unwrap_or(self.since);
        let mut boundary = match self.per {
            Per::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            _ => day,
        };
        let mut periods = Vec::new();
        let mut start = self.since;
        while start < self.until && periods.len() <= MAX_PERIODS {
            boundary += step;
            let end = boundary.min(self.until);
            if end > start {
                periods.push((start, end));
                start = end;
            }
        }
        periods
    }
}

/// A median and a 90th percentile, in seconds, of `count` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
pub struct Spread {
    pub count: usize,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

impl Spread {
    pub fn of(mut values: Vec<i64>) -> Spread {
        values.sort_unstable();
        Spread {
            count: values.len(),
            median_secs: nearest_rank(&values, 50),
            p90_secs: nearest_rank(&values, 90),
        }
    }
}

/// The value at rank ⌈p/100 · n⌉ of sorted `values`.
fn nearest_rank(values: &[i64], percent: usize) -> Option<i64> {
    let rank = (values.len() * percent).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

/// One period's figures, for one service or for all together.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    pub period_start: DateTime<Utc>,
    /// Exclusive.
    pub period_end: DateTime<Utc>,
    /// `null`: every service together, each deployment once.
    pub service: Option<ServiceName>,
    /// Finished or rolled back in the period.
    pub deployments: usize,
    pub rollbacks: usize,
    /// `rollbacks / deployments`; `null` without deployments.
    pub change_failure_rate: Option<f64>,
    /// Request to finish, of those finished.
    pub lead_time: Spread,
    /// Request to approval.
    pub approval_wait: Spread,
    /// Approval to the admin joining, of those that needed one.
    pub admin_wait: Spread,
    /// First start refused for a held lock to the start, of those refused so.
    pub lock_wait: Spread,
    /// Rollback to the next finished deployment of the service.
    pub time_to_restore: Spread,
    /// Rollbacks with no finished deployment of the service since.
    pub unrestored: usize,
}

/// When each rolled-back deployment's services were restored: `(its revision, service)` to the
/// finish of the service's next finished deployment; absent while none has finished.
pub type Restores = HashMap<(u64, ServiceName), DateTime<Utc>>;

/// Whether `d` ended (finished or rolled back) in `[since, until)`.
pub fn ended_in(d: &Deployment, since: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    matches!(
        d.outcome,
        Some(DeploymentOutcome::Finished | DeploymentOutcome::RolledBack)
    ) && d.finished_at.is_some_and(|t| since <= t && t < until)
}

/// The report over `ended` (the deployments that ended in the range; others are ignored).
pub fn figures(query: &ReportQuery, ended: &[Deployment], restores: &Restores) -> Vec<Figures> {
    let periods = query.periods();
    // Each deployment in its period, found by halves: the work is the records, not records
    // times periods.
    let mut by_period: Vec<Vec<&Deployment>> = vec![Vec::new(); periods.len()];
    for d in ended {
        let Some(at) = d.finished_at else { continue };
        let i = periods.partition_point(|(start, _)| *start <= at);
        if let Some(i) = i.checked_sub(1)
            && ended_in(d, periods[i].0, periods[i].1)
        {
            by_period[i].push(d);
        }
    }
    let mut rows = Vec::new();
    for ((start, end), here) in periods.into_iter().zip(by_period) {
        match &query.service {
            Some(service) => {
                let mine: Vec<&Deployment> =
                    here.into_iter().filter(|d| d.touches(service)).collect();
                rows.push(period((start, end), Some(service), &mine, restores));
            }
            None => {
                rows.push(period((start, end), None, &here, restores));
                let mut by_service: BTreeMap<&ServiceName, Vec<&Deployment>> = BTreeMap::new();
                for d in &here {
                    for service in &d.services {
                        by_service.entry(service).or_default().push(d);
                    }
                }
                for (service, mine) in by_service {
                    rows.push(period((start, end), Some(service), &mine, restores));
                }
            }
        }
    }
    rows
}

fn period(
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    service: Option<&ServiceName>,
    deployments: &[&Deployment],
    restores: &Restores,
) -> Figures {
    let secs = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_seconds().max(0);
    let rolled_back: Vec<&&Deployment> = deployments
        .iter()
        .filter(|d| d.outcome == Some(DeploymentOutcome::RolledBack))
        .collect();
    let finished = deployments
        .iter()
        .filter(|d| d.outcome == Some(DeploymentOutcome::Finished));
    let lead_time = finished
        .filter_map(|d| Some(secs(d.requested_at, d.finished_at?)))
        .collect();
    let approval_wait = deployments
        .iter()
        .filter_map(|d| Some(secs(d.requested_at, d.accepted_at?)))
        .collect();
    let admin_wait = deployments
        .iter()
        .filter(|d| d.need_admin)
        .filter_map(|d| Some(secs(d.accepted_at?, d.admin_joined_at?)))
        .collect();
    let lock_wait = deployments
        .iter()
        .filter_map(|d| Some(secs(d.lock_wait_from?, d.started_at?)))
        .collect();
    let mut restored = Vec::new();
    let mut unrestored = 0;
    for d in &rolled_back {
        let Some(at) = d.finished_at else { continue };
        let services: Vec<&ServiceName> = match service {
            Some(service) => vec![service],
            None => d.services.iter().collect(),
        };
        let times: Option<Vec<&DateTime<Utc>>> = services
            .iter()
            .map(|s| restores.get(&(d.revision, (*s).clone())))
            .collect();
        match times.and_then(|times| times.into_iter().max().copied()) {
            Some(back) => restored.push(secs(at, back)),
            None => unrestored += 1,
        }
    }
    let count = deployments.len();
    Figures {
        period_start: start,
        period_end: end,
        service: service.cloned(),
        deployments: count,
        rollbacks: rolled_back.len(),
        change_failure_rate: (count > 0).then(|| rolled_back.len() as f64 / count as f64),
        lead_time: Spread::of(lead_time),
        approval_wait: Spread::of(approval_wait),
        admin_wait: Spread::of(admin_wait),
        lock_wait: Spread::of(lock_wait),
        time_to_restore: Spread::of(restored),
        unrestored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn nearest_rank_takes_the_value_at_the_ceiling_rank() {
        let spread = Spread::of(vec![40, 10, 30, 20]);
        assert_eq!(spread.count, 4);
        assert_eq!(spread.median_secs, Some(20), "rank 2 of 4");
        assert_eq!(spread.p90_secs, Some(40), "rank ⌈3.6⌉ = 4");
        let ten = Spread::of((1..=10).collect());
        assert_eq!((ten.median_secs, ten.p90_secs), (Some(5), Some(9)));
        assert_eq!(Spread::of(vec![7]).p90_secs, Some(7));
        assert_eq!(Spread::of(Vec::new()), Spread::default());
    }

    #[test]
    fn weeks_start_on_monday_and_are_cut_to_the_range() {
        // 2026-03-04 is a Wednesday; 2026-03-09 and 2026-03-16 are Mondays.
        let query = ReportQuery {
            since: at(4, 12),
            until: at(17, 6),
            service: None,
            per: Per::Week,
        };
        assert_eq!(
            query.periods(),
            [
                (at(4, 12), at(9, 0)),
                (at(9, 0), at(16, 0)),
                (at(16, 0), at(17, 6))
            ]
        );
        let days = ReportQuery {
            per: Per::Day,
            ..query.clone()
        };
        assert_eq!(days.periods().len(), 14);
        assert_eq!(days.periods()[0], (at(4, 12), at(5, 0)));
        let whole = ReportQuery {
            per: Per::Range,
            ..query
        };
        assert_eq!(whole.periods(), [(at(4, 12), at(17, 6))]);
    }

    #[test]
    fn a_range_is_widened_to_whole_seconds() {
        let since = at(4, 12) + Duration::nanoseconds(1_500);
        let until = at(5, 12) + Duration::milliseconds(250);
        let query = ReportQuery::new(since, until, None, Per::Range);
        assert_eq!(query.since, at(4, 12));
        assert_eq!(query.until, at(5, 12) + Duration::seconds(1));
        assert_eq!(
            ReportQuery::new(at(4, 12), at(5, 12), None, Per::Day).until,
            at(5, 12)
        );
    }

    #[test]
    fn an_empty_or_too_long_range_is_refused() {
        let empty = ReportQuery {
            since: at(4, 12),
            until: at(4, 12),
            service: None,
            per: Per::Week,
        };
        assert!(empty.check().unwrap_err().contains("empty"));
        let long = ReportQuery {
            since: at(1, 0) - Duration::days(4000),
            per: Per::Day,
            ..empty
        };
        assert!(long.check().unwrap_err().contains("at most"));
        assert_eq!(Per::parse("Week"), Ok(Per::Week));
        assert!(
            Per::parse("month")
                .unwrap_err()
                .contains("day, week, range")
        );
    }
}
