//! The rules that come from config: who approves, who is an admin, which services a ticket
//! deploys, which services never deploy together, and which checks a request must pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regex::Regex;

use super::checks::{TicketCheck, TicketPattern, WikiLinkRequired};
use super::command::ReleaseRequest;
use super::refusal::CheckFailure;
use super::tracker::{TicketInTracker, TrackerRules};
use super::types::{GroupName, ServiceName, TicketKey, UserId};

/// Services that never deploy at the same time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictGroup {
    pub name: GroupName,
    pub services: BTreeSet<ServiceName>,
}

/// The people who hold each role. A config's role entries may name Slack user groups
/// (`config::Roles`); the policy holds only people, with groups resolved to their members by
/// whoever can (the Slack front's directory).
#[derive(Debug, Clone)]
pub struct Policy {
    pub approvers: BTreeSet<UserId>,
    pub admins: BTreeSet<UserId>,
    /// The requester may not approve their own release.
    pub four_eyes: bool,
    /// Ticket project key (`PAY`) -> the services its releases deploy.
    pub services_by_project: BTreeMap<String, Vec<ServiceName>>,
    pub conflict_groups: Vec<ConflictGroup>,
    pub checks: Vec<Arc<dyn TicketCheck>>,
    /// What the tracker must say of a ticket (`[tracker]`); `None` without a tracker.
    pub tracker: Option<TrackerRules>,
    /// How old a deployment must be, in seconds, before an admin alone may take it over
    /// (`[locks] takeover_after`); younger ones need `--force` by two people.
    pub takeover_after_secs: u64,
}

impl Policy {
    /// The standard checks: the ticket pattern, and a wiki link when `require_wiki_link`.
    pub fn standard_checks(
        ticket_pattern: Regex,
        require_wiki_link: bool,
    ) -> Vec<Arc<dyn TicketCheck>> {
        let mut checks: Vec<Arc<dyn TicketCheck>> = vec![Arc::new(TicketPattern(ticket_pattern))];
        if require_wiki_link {
            checks.push(Arc::new(WikiLinkRequired));
        }
        checks
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
            four_eyes: true,
            services_by_project: BTreeMap::new(),
            conflict_groups: Vec::new(),
            checks: Self::standard_checks(pattern, true),
            tracker: None,
            takeover_after_secs: DEFAULT_TAKEOVER_AFTER_SECS,
        }
    }
}

/// `[locks] takeover_after` unless configured: 30 minutes.
pub const DEFAULT_TAKEOVER_AFTER_SECS: u64 = 30 * 60;

pub const DEFAULT_TICKET_PATTERN: &str = "^[A-Z][A-Z0-9]+-[0-9]+$";

fn dedup(services: impl Iterator<Item = ServiceName>) -> Vec<ServiceName> {
    let mut seen = BTreeSet::new();
    services.filter(|s| seen.insert(s.clone())).collect()
}
