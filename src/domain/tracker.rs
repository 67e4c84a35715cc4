//! The ticket as the tracker (Jira) sees it, and the one rule that turns what it said into
//! failed checks or a record for the ledger.
//!
//! The lookup is I/O, so it happens at the edge before `decide` (`crate::tracker`, called by
//! the bot) and arrives here as a value, a [`TrackerFinding`], inside the request. What the
//! config requires of a ticket is [`TrackerRules`], part of the `Policy`; [`TrackerRules::assess`]
//! is the rule, in one place. A tracker that could not be asked is not a ticket that is not
//! ready: it either refuses the request or lets it through (`on_unavailable`), and in both cases
//! the ledger says what was checked and what was not ([`TicketInTracker`]).

use serde::{Deserialize, Serialize};

use super::refusal::CheckFailure;

/// What the tracker answered about a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerFinding {
    /// Boxed: an issue is large next to the other answers, and a command carries one.
    Found(Box<Issue>),
    /// The tracker says there is no such issue (or that these credentials may not see it: Jira
    /// answers both with the same 404).
    NotFound,
    /// No answer in time: a timeout, a network error, a 5xx, a rate limit longer than the wait
    /// allowed.
    Unavailable { reason: String },
    /// The tracker refused our credentials (401/403): a configuration error for the admins,
    /// not a property of the ticket.
    Misconfigured { reason: String },
}

impl TrackerFinding {
    /// The kind of answer, for counting: `found`, `not_found`, `unavailable`, `misconfigured`.
    pub fn outcome(&self) -> &'static str {
        match self {
            TrackerFinding::Found(_) => "found",
            TrackerFinding::NotFound => "not_found",
            TrackerFinding::Unavailable { .. } => "unavailable",
            TrackerFinding::Misconfigured { .. } => "misconfigured",
        }
    }
}

/// The fields of an issue that the checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub summary: String,
    pub status: String,
    pub status_category: Option<StatusCategory>,
    pub issue_type: String,
    pub fix_versions: Vec<String>,
    /// The assignee's display name; `None` when unassigned.
    pub assignee: Option<String>,
    pub labels: Vec<String>,
}

/// Jira's grouping of statuses: a stable `key` (`new`, `indeterminate`, `done`) and a `name`
/// people see (`To Do`, `In Progress`, `Done`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCategory {
    pub key: String,
    pub name: String,
}

/// What to do when the tracker cannot be asked (`[tracker] on_unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// Refuse the request, naming why the tracker could not be asked.
    #[default]
    Refuse,
    /// Let it through; the request's event records that the tracker checks were not made.
    Allow,
}

/// A check made against the tracker, as named in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackerCheck {
    /// The issue exists.
    Exists,
    /// Its status (or status category) is an allowed one.
    Status,
    /// It has a fix version.
    FixVersion,
    /// It has an assignee.
    Assignee,
    /// Its type is an allowed one.
    IssueType,
    /// It has one of the labels.
    Label,
}

/// What config requires of a ticket in the tracker (`[tracker]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerRules {
    /// Allowed status names (case-insensitive); with `status_categories`, either may match.
    pub statuses: Vec<String>,
    /// Allowed status categories, by key or name (case-insensitive).
    pub status_categories: Vec<String>,
    pub require_fix_version: bool,
    pub require_assignee: bool,
    /// Allowed issue types (case-insensitive); empty allows any.
    pub issue_types: Vec<String>,
    /// The ticket must carry one of these labels (exactly as written); empty requires none.
    pub labels: Vec<String>,
    pub on_unavailable: OnUnavailable,
}

/// Why the tracker checks were not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotCheckedCause {
    /// The tracker did not answer in time.
    Unavailable,
    /// The tracker refused dobrobot's credentials.
    Misconfigured,
}

/// What the ledger records of the tracker with an accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TicketInTracker {
    /// The tracker answered and every check passed.
    Checked {
        summary: String,
        status: String,
        checks: Vec<TrackerCheck>,
    },
    /// The tracker could not be asked and `on_unavailable = "allow"` let the request through:
    /// these checks were not made.
    NotChecked {
        cause: NotCheckedCause,
        reason: String,
        checks: Vec<TrackerCheck>,
    },
}

impl TrackerRules {
    /// The checks these rules make, in the order they are reported.
    pub fn checks(&self) -> Vec<TrackerCheck> {
        let mut checks = vec![TrackerCheck::Exists];
        if !self.statuses.is_empty() || !self.status_categories.is_empty() {
            checks.push(TrackerCheck::Status);
        }
        if self.require_fix_version {
            checks.push(TrackerCheck::FixVersion);
        }
        if self.require_assignee {
            checks.push(TrackerCheck::Assignee);
        }
        if !self.issue_types.is_empty() {
            checks.push(TrackerCheck::IssueType);
        }
        if !self.labels.is_empty() {
            checks.push(TrackerCheck::Label);
        }
        checks
    }

    /// The rule: what the tracker said, against what config requires. `Ok` is what the request's
    /// event records; `Err` is every check that failed. No finding at all (the request did not
    /// pass through a front that asks the tracker) counts as a tracker that was not asked.
    pub fn assess(
        &self,
        finding: Option<&TrackerFinding>,
    ) -> Result<TicketInTracker, Vec<CheckFailure>> {
        let not_asked = TrackerFinding::Unavailable {
            reason: "the tracker was not asked".to_string(),
        };
        match finding.unwrap_or(&not_asked) {
            TrackerFinding::Found(issue) => self.assess_issue(issue),
            TrackerFinding::NotFound => Err(vec![CheckFailure::TicketNotFound]),
            TrackerFinding::Unavailable { reason } => self.unanswered(
                NotCheckedCause::Unavailable,
                reason,
                CheckFailure::TrackerUnavailable {
                    reason: reason.clone(),
                },
            ),
            TrackerFinding::Misconfigured { reason } => self.unanswered(
                NotCheckedCause::Misconfigured,
                reason,
                CheckFailure::TrackerMisconfigured {
                    reason: reason.clone(),
                },
            ),
        }
    }

    fn unanswered(
        &self,
        cause: NotCheckedCause,
        reason: &str,
        failure: CheckFailure,
    ) -> Result<TicketInTracker, Vec<CheckFailure>> {
        match self.on_unavailable {
            OnUnavailable::Refuse => Err(vec![failure]),
            OnUnavailable::Allow => Ok(TicketInTracker::NotChecked {
                cause,
                reason: reason.to_string(),
                checks: self.checks(),
            }),
        }
    }

    fn assess_issue(&self, issue: &Issue) -> Result<TicketInTracker, Vec<CheckFailure>> {
        let mut failures = Vec::new();
        for check in self.checks() {
            if let Some(failure) = self.failure(check, issue) {
                failures.push(failure);
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        Ok(TicketInTracker::Checked {
            summary: issue.summary.clone(),
            status: issue.status.clone(),
            checks: self.checks(),
        })
    }

    fn failure(&self, check: TrackerCheck, issue: &Issue) -> Option<CheckFailure> {
        match check {
            TrackerCheck::Exists => None,
            TrackerCheck::Status => {
                let by_name = contains_ignoring_case(&self.statuses, &issue.status);
                let by_category = issue.status_category.as_ref().is_some_and(|c| {
                    contains_ignoring_case(&self.status_categories, &c.key)
                        || contains_ignoring_case(&self.status_categories, &c.name)
                });
                (!by_name && !by_category).then(|| CheckFailure::StatusNotAllowed {
                    status: issue.status.clone(),
                    statuses: self.statuses.clone(),
                    status_categories: self.status_categories.clone(),
                })
            }
            TrackerCheck::FixVersion => issue
                .fix_versions
                .is_empty()
                .then_some(CheckFailure::NoFixVersion),
            TrackerCheck::Assignee => issue.assignee.is_none().then_some(CheckFailure::NoAssignee),
            TrackerCheck::IssueType => {
                (!contains_ignoring_case(&self.issue_types, &issue.issue_type)).then(|| {
                    CheckFailure::IssueTypeNotAllowed {
                        issue_type: issue.issue_type.clone(),
                        allowed: self.issue_types.clone(),
                    }
                })
            }
            TrackerCheck::Label => {
                (!self.labels.iter().any(|l| issue.labels.contains(l))).then(|| {
                    CheckFailure::LabelMissing {
                        labels: self.labels.clone(),
                    }
                })
            }
        }
    }
}

fn contains_ignoring_case(allowed: &[String], value: &str) -> bool {
    let value = value.trim().to_lowercase();
    allowed.iter().any(|a| a.trim().to_lowercase() == value)
}
