//! The rules that come from config: who approves, who is an admin, which services a ticket
//! deploys, which services never deploy together, which checks a request must pass, and when
//! reminders fall due.
//!
//! A policy is data: it is recorded in the ledger whenever it changes (`Event::PolicyChanged`,
//! whole, so that a replay needs nothing else), and `decide` uses the one recorded at that
//! point of the ledger. [`Policy::changes`] says in words what changed between two.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::checks::{Pattern, TicketCheck};
use super::command::ReleaseRequest;
use super::refusal::CheckFailure;
use super::reminders::ReminderSettings;
use super::tracker::{TicketInTracker, TrackerRules};
use super::types::{GroupName, RoleEntry, ServiceName, TicketKey, UserGroupId, UserId};

/// Services that never deploy at the same time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictGroup {
    pub name: GroupName,
    pub services: BTreeSet<ServiceName>,
}

/// The role entries as configured: people and Slack user groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub approvers: Vec<RoleEntry>,
    pub admins: Vec<RoleEntry>,
}

/// The rules. A config's role entries may name Slack user groups (`roles`); `approvers` and
/// `admins` hold the people, with each group's members as the Slack directory last listed them
/// (`user_groups`, see [`Policy::with_members`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The people who may approve: the roles' people and the listed members of their groups.
    pub approvers: BTreeSet<UserId>,
    pub admins: BTreeSet<UserId>,
    /// The role entries as configured (pipeline actors among them as people).
    #[serde(default)]
    pub roles: Roles,
    /// The members of each configured user group as last listed; a group not listed yet is
    /// absent.
    #[serde(default)]
    pub user_groups: BTreeMap<UserGroupId, BTreeSet<UserId>>,
    /// The requester may not approve their own release.
    pub four_eyes: bool,
    /// Ticket project key (`PAY`) -> the services its releases deploy.
    pub services_by_project: BTreeMap<String, Vec<ServiceName>>,
    pub conflict_groups: Vec<ConflictGroup>,
    pub checks: Vec<TicketCheck>,
    /// What the tracker must say of a ticket (`[tracker]`); `None` without a tracker.
    pub tracker: Option<TrackerRules>,
    /// When reminders fall due (`[slack]`).
    #[serde(default)]
    pub reminders: ReminderSettings,
    /// How old a deployment must be, in seconds, before an admin alone may take it over
    /// (`[locks] takeover_after`); younger ones need `--force` by two people.
    #[serde(default = "default_takeover_after")]
    pub takeover_after_secs: u64,
}

impl Policy {
    /// The standard checks: the ticket pattern, and a wiki link when `require_wiki_link`.
    pub fn standard_checks(ticket_pattern: Regex, require_wiki_link: bool) -> Vec<TicketCheck> {
        let mut checks = vec![TicketCheck::TicketPattern {
            pattern: Pattern::from(ticket_pattern),
        }];
        if require_wiki_link {
            checks.push(TicketCheck::WikiLinkRequired);
        }
        checks
    }

    /// This policy with `groups` as the members of its user groups (those it names; a group
    /// missing from `groups` keeps the members it had), and its people recomputed from its
    /// roles.
    pub fn with_members(mut self, groups: &BTreeMap<UserGroupId, BTreeSet<UserId>>) -> Self {
        let named: BTreeSet<&UserGroupId> = self
            .roles
            .approvers
            .iter()
            .chain(&self.roles.admins)
            .filter_map(|entry| match entry {
                RoleEntry::Group(group) => Some(group),
                RoleEntry::User(_) => None,
            })
            .collect();
        let mut members: BTreeMap<UserGroupId, BTreeSet<UserId>> = BTreeMap::new();
        for group in named {
            if let Some(listed) = groups.get(group).or_else(|| self.user_groups.get(group)) {
                members.insert(group.clone(), listed.clone());
            }
        }
        self.user_groups = members;
        self.approvers = self.people(&self.roles.approvers);
        self.admins = self.people(&self.roles.admins);
        self
    }

    /// The people of role entries: the users, and the listed members of the groups.
    pub fn people(&self, entries: &[RoleEntry]) -> BTreeSet<UserId> {
        entries
            .iter()
            .flat_map(|entry| match entry {
                RoleEntry::User(user) => vec![user.clone()],
                RoleEntry::Group(group) => self
                    .user_groups
                    .get(group)
                    .map(|m| m.iter().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    pub fn is_approver(&self, user: &UserId) -> bool {
        self.approvers.contains(user)
    }

    pub fn is_admin(&self, user: &UserId) -> bool {
        self.admins.contains(user)
    }

    /// The services a request deploys: the ones it names, else the project's from config.
    pub fn services_for(&self, request: &ReleaseRequest) -> Vec<ServiceName> {
        match &request.services {
            Some(named) => dedup(named.iter().cloned()),
            None => self.services_of(&request.ticket),
        }
    }

    /// Every configured service: those the projects deploy and those the conflict groups name.
    pub fn services(&self) -> BTreeSet<ServiceName> {
        self.services_by_project
            .values()
            .flatten()
            .chain(self.conflict_groups.iter().flat_map(|g| g.services.iter()))
            .cloned()
            .collect()
    }

    pub fn services_of(&self, ticket: &TicketKey) -> Vec<ServiceName> {
        self.services_by_project
            .get(ticket.project())
            .map(|s| dedup(s.iter().cloned()))
            .unwrap_or_default()
    }

    /// Every failed check of a request: the formal ones ([`Policy::form_checks`]), then the
    /// tracker's.
    pub fn check(&self, request: &ReleaseRequest) -> Vec<CheckFailure> {
        let mut failures = self.form_checks(request);
        if let Some(Err(tracker)) = self.assess_in_tracker(request) {
            failures.extend(tracker);
        }
        failures
    }

    /// The checks of the request as typed, in the order they are configured, then the missing
    /// services; what a form can tell before anything is looked up.
    pub fn form_checks(&self, request: &ReleaseRequest) -> Vec<CheckFailure> {
        let mut failures: Vec<CheckFailure> = self
            .checks
            .iter()
            .filter_map(|c| c.check(request))
            .collect();
        if self.services_for(request).is_empty() {
            failures.push(CheckFailure::NoServices {
                project: request.ticket.project().to_string(),
            });
        }
        failures
    }

    /// What the request's event records of the tracker: `None` without a tracker, or when the
    /// tracker's checks failed (the request is refused then).
    pub fn in_tracker(&self, request: &ReleaseRequest) -> Option<TicketInTracker> {
        self.assess_in_tracker(request).and_then(Result::ok)
    }

    fn assess_in_tracker(
        &self,
        request: &ReleaseRequest,
    ) -> Option<Result<TicketInTracker, Vec<CheckFailure>>> {
        let rules = self.tracker.as_ref()?;
        Some(rules.assess(request.tracker.as_ref()))
    }

    /// The conflict groups any of the services belongs to.
    pub fn groups_of(&self, services: &[ServiceName]) -> Vec<GroupName> {
        self.conflict_groups
            .iter()
            .filter(|g| services.iter().any(|s| g.services.contains(s)))
            .map(|g| g.name.clone())
            .collect()
    }
}

impl Default for Policy {
    /// No roles, four-eyes on, the default ticket pattern, wiki link required, takeovers after
    /// 30 minutes.
    fn default() -> Self {
        let pattern = Regex::new(DEFAULT_TICKET_PATTERN).expect("the default pattern is valid");
        Policy {
            approvers: BTreeSet::new(),
            admins: BTreeSet::new(),
            roles: Roles::default(),
            user_groups: BTreeMap::new(),
            four_eyes: true,
            services_by_project: BTreeMap::new(),
            conflict_groups: Vec::new(),
            checks: Self::standard_checks(pattern, true),
            tracker: None,
            reminders: ReminderSettings::default(),
            takeover_after_secs: DEFAULT_TAKEOVER_AFTER_SECS,
        }
    }
}

/// `[locks] takeover_after` unless configured: 30 minutes.
pub const DEFAULT_TAKEOVER_AFTER_SECS: u64 = 30 * 60;

fn default_takeover_after() -> u64 {
    DEFAULT_TAKEOVER_AFTER_SECS
}

pub const DEFAULT_TICKET_PATTERN: &str = "^[A-Z][A-Z0-9]+-[0-9]+$";

fn dedup(services: impl Iterator<Item = ServiceName>) -> Vec<ServiceName> {
    let mut seen = BTreeSet::new();
    services.filter(|s| seen.insert(s.clone())).collect()
}

/// What changed from `before` to `after`, a line each in words (`admins: added U02; removed
/// U07`); empty when nothing did. With no `before`, the one line says it is the first policy.
pub fn changes(before: Option<&Policy>, after: &Policy) -> Vec<String> {
    let Some(before) = before else {
        return vec!["the first recorded policy".to_string()];
    };
    let mut lines = Vec::new();
    set_change(&mut lines, "approvers", &before.approvers, &after.approvers);
    set_change(&mut lines, "admins", &before.admins, &after.admins);
    let entries = |e: &[RoleEntry]| e.iter().map(|e| e.as_str().to_string()).collect();
    set_change(
        &mut lines,
        "approver entries in the config",
        &entries(&before.roles.approvers),
        &entries(&after.roles.approvers),
    );
    set_change(
        &mut lines,
        "admin entries in the config",
        &entries(&before.roles.admins),
        &entries(&after.roles.admins),
    );
    let groups: BTreeSet<&UserGroupId> = before
        .user_groups
        .keys()
        .chain(after.user_groups.keys())
        .collect();
    let empty = BTreeSet::new();
    for group in groups {
        set_change(
            &mut lines,
            &format!("members of user group {group}"),
            before.user_groups.get(group).unwrap_or(&empty),
            after.user_groups.get(group).unwrap_or(&empty),
        );
    }
    if before.four_eyes != after.four_eyes {
        lines.push(format!(
            "four-eyes: {} (was {})",
            on_off(after.four_eyes),
            on_off(before.four_eyes)
        ));
    }
    let projects: BTreeSet<&String> = before
        .services_by_project
        .keys()
        .chain(after.services_by_project.keys())
        .collect();
    for project in projects {
        let (was, now) = (
            before.services_by_project.get(project),
            after.services_by_project.get(project),
        );
        if was != now {
            lines.push(format!(
                "services of {project}: {} (was {})",
                list(now.map(|s| s.iter().map(ServiceName::as_str))),
                list(was.map(|s| s.iter().map(ServiceName::as_str)))
            ));
        }
    }
    let named = |p: &Policy| -> BTreeMap<GroupName, BTreeSet<ServiceName>> {
        p.conflict_groups
            .iter()
            .map(|g| (g.name.clone(), g.services.clone()))
            .collect()
    };
    let (was_groups, now_groups) = (named(before), named(after));
    let names: BTreeSet<&GroupName> = was_groups.keys().chain(now_groups.keys()).collect();
    for name in names {
        let (was, now) = (was_groups.get(name), now_groups.get(name));
        match (was, now) {
            (None, Some(now)) => lines.push(format!(
                "conflict group {name} added: {}",
                list(Some(now.iter().map(ServiceName::as_str)))
            )),
            (Some(was), None) => lines.push(format!(
                "conflict group {name} removed (was {})",
                list(Some(was.iter().map(ServiceName::as_str)))
            )),
            (Some(was), Some(now)) if was != now => lines.push(format!(
                "conflict group {name}: {} (was {})",
                list(Some(now.iter().map(ServiceName::as_str))),
                list(Some(was.iter().map(ServiceName::as_str)))
            )),
            _ => {}
        }
    }
    if before.checks != after.checks {
        lines.push(format!(
            "ticket checks: {} (was {})",
            describe_checks(&after.checks),
            describe_checks(&before.checks)
        ));
    }
    if before.tracker != after.tracker {
        lines.push(format!(
            "tracker checks: {} (was {})",
            describe_tracker(after.tracker.as_ref()),
            describe_tracker(before.tracker.as_ref())
        ));
    }
    let (was, now) = (&before.reminders, &after.reminders);
    for (what, was, now) in [
        (
            "approval reminder after",
            was.approval_after,
            now.approval_after,
        ),
        (
            "deployment expected within",
            was.deployment_expected,
            now.deployment_expected,
        ),
        ("stale lock after", was.stale_lock, now.stale_lock),
    ] {
        if was != now {
            lines.push(format!("{what} {} (was {})", span(now), span(was)));
        }
    }
    if before.takeover_after_secs != after.takeover_after_secs {
        let secs = |s: u64| {
            span(
                i64::try_from(s)
                    .ok()
                    .and_then(chrono::TimeDelta::try_seconds)
                    .unwrap_or(chrono::TimeDelta::MAX),
            )
        };
        lines.push(format!(
            "takeover after {} (was {})",
            secs(after.takeover_after_secs),
            secs(before.takeover_after_secs)
        ));
    }
    if was.quiet_hours != now.quiet_hours {
        let hours = |q: &Option<super::reminders::QuietHours>| match q {
            Some(q) => format!("{}-{} UTC", q.start.format("%H:%M"), q.end.format("%H:%M")),
            None => "none".to_string(),
        };
        lines.push(format!(
            "quiet hours: {} (was {})",
            hours(&now.quiet_hours),
            hours(&was.quiet_hours)
        ));
    }
    set_change(
        &mut lines,
        "backup approvers",
        &entries(&was.backup_approvers),
        &entries(&now.backup_approvers),
    );
    lines
}

fn set_change<T: Ord + std::fmt::Display>(
    lines: &mut Vec<String>,
    what: &str,
    before: &BTreeSet<T>,
    after: &BTreeSet<T>,
) {
    let added: Vec<String> = after.difference(before).map(|x| x.to_string()).collect();
    let removed: Vec<String> = before.difference(after).map(|x| x.to_string()).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", removed.join(", ")));
    }
    if !parts.is_empty() {
        lines.push(format!("{what}: {}", parts.join("; ")));
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn list<'a>(items: Option<impl Iterator<Item = &'a str>>) -> String {
    let items: Vec<&str> = items.map(|i| i.collect()).unwrap_or_default();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// The ticket checks in words (`ticket matches ^[A-Z]+-[0-9]+$, a wiki link`).
pub fn describe_checks(checks: &[TicketCheck]) -> String {
    let words: Vec<String> = checks
        .iter()
        .map(|c| match c {
            TicketCheck::TicketPattern { pattern } => {
                format!("ticket matches {}", pattern.as_str())
            }
            TicketCheck::WikiLinkRequired => "a wiki link".to_string(),
        })
        .collect();
    if words.is_empty() {
        "none".to_string()
    } else {
        words.join(", ")
    }
}

/// What the tracker must say of a ticket, in words; `none` without a tracker.
pub fn describe_tracker(rules: Option<&TrackerRules>) -> String {
    let Some(r) = rules else {
        return "none".to_string();
    };
    let mut words = Vec::new();
    if !r.statuses.is_empty() || !r.status_categories.is_empty() {
        let allowed: Vec<&str> = r
            .statuses
            .iter()
            .chain(&r.status_categories)
            .map(String::as_str)
            .collect();
        words.push(format!("status in {}", allowed.join(" or ")));
    }
    if r.require_fix_version {
        words.push("a fix version".to_string());
    }
    if r.require_assignee {
        words.push("an assignee".to_string());
    }
    if !r.issue_types.is_empty() {
        words.push(format!("type {}", r.issue_types.join(" or ")));
    }
    if !r.labels.is_empty() {
        words.push(format!("a label of {}", r.labels.join(", ")));
    }
    let on_unavailable = match r.on_unavailable {
        super::tracker::OnUnavailable::Refuse => "refuse",
        super::tracker::OnUnavailable::Allow => "allow",
    };
    words.push(format!("{on_unavailable} when unavailable"));
    words.join(", ")
}

/// A duration as `1h30m`.
fn span(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}
