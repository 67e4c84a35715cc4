//! Given / when / then for every rule and every refusal in `decide`.
//!
//! A scenario folds the given events into a `State` (each recorded one minute after the one
//! before, from `at(0)`; `later` moves the clock on), parses the command from real chat text
//! with `parse`, decides it at the time the next event would be recorded, and compares what
//! `decide` returns with the expected events or refusal value, never with reply text. `then`
//! and `then_refused` hand back the scenario with the outcome recorded, so a story can go on:
//! a refusal is recorded as `CommandRefused` (unless the command's refusals are not recorded:
//! reminders) and must leave the state as it was.
//!
//! The policy fixture: approvers alice and bob, admin oleg, `PAY -> billing`, `API -> api`,
//! `WEB -> web`, and the conflict group `backend-core` of api and billing. Requesters are
//! anyone else (dev, eve).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use regex::Regex;

use super::command::{Command, Input};
use super::decide::{decide, refused};
use super::event::Event;
use super::parse::{ParseError, parse};
use super::policy::{ConflictGroup, Policy};
use super::queue::{QueueItem, Waiting, queue};
use super::refusal::{CheckFailure, Refusal, Role};
use super::reminders::system_actor;
use super::state::State;
use super::tracker::{
    Issue, NotCheckedCause, OnUnavailable, StatusCategory, TicketInTracker, TrackerCheck,
    TrackerFinding, TrackerRules,
};
use super::types::{GroupName, LockKey, ReleaseStatus, ReminderKind};
use super::types::{Reason, ServiceName, TicketKey, UserId, WikiLink};

pub struct Scenario {
    policy: Policy,
    state: State,
    recorded: usize,
    /// How far `later` has moved the clock past `at(recorded)`.
    skipped: Duration,
}

impl Scenario {
    pub fn given(events: impl IntoIterator<Item = Event>) -> Self {
        let mut scenario = Scenario {
            policy: policy(),
            state: State::default(),
            recorded: 0,
            skipped: Duration::zero(),
        };
        for event in events {
            scenario.record(&event);
        }
        scenario
    }

    /// Changes the policy fixture for this scenario.
    pub fn with_policy(mut self, change: impl FnOnce(&mut Policy)) -> Self {
        change(&mut self.policy);
        self
    }

    /// Moves the clock on: what is decided and recorded from now on happens `by` later.
    pub fn later(mut self, by: Duration) -> Self {
        self.skipped += by;
        self
    }

    /// When the next event is recorded, and so when the next command is decided.
    pub fn now(&self) -> DateTime<Utc> {
        at(self.recorded) + self.skipped
    }

    pub fn when(self, (actor, command): (UserId, Command)) -> Decided {
        let outcome = decide(&self.state, &actor, &command, &self.policy, self.now());
        Decided {
            scenario: self,
            actor,
            command,
            outcome,
        }
    }

    pub fn queue(&self) -> Vec<QueueItem> {
        queue(&self.state, &self.policy)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    fn record(&mut self, event: &Event) {
        self.state.evolve(event, self.now());
        self.recorded += 1;
    }
}

/// A command decided against a scenario, waiting for its expectation.
pub struct Decided {
    scenario: Scenario,
    actor: UserId,
    command: Command,
    outcome: Result<Vec<Event>, Refusal>,
}

impl Decided {
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = Event>) -> Scenario {
        let Decided {
            mut scenario,
            actor,
            command,
            outcome,
        } = self;
        let expected: Vec<Event> = expected.into_iter().collect();
        match outcome {
            Ok(events) => {
                assert_eq!(events, expected, "`{}` by {actor}", command.verb());
                for event in &events {
                    scenario.record(event);
                }
            }
            Err(refusal) => panic!(
                "`{}` by {actor} was refused with {refusal:?}; expected {expected:?}",
                command.verb()
            ),
        }
        scenario
    }

    #[track_caller]
    pub fn then_refused(self, expected: Refusal) -> Scenario {
        let Decided {
            mut scenario,
            actor,
            command,
            outcome,
        } = self;
        match outcome {
            Err(refusal) => {
                assert_eq!(refusal, expected, "`{}` by {actor}", command.verb());
                let before = scenario.state.clone();
                if command.records_refusal() {
                    scenario.record(&refused(&actor, &command, refusal));
                }
                assert_eq!(
                    scenario.state, before,
                    "a recorded refusal changed the state"
                );
            }
            Ok(events) => panic!(
                "`{}` by {actor} was carried out with {events:?}; expected {expected:?}",
                command.verb()
            ),
        }
        scenario
    }
}

/// The command `text` typed by `actor`, through the real parser.
#[track_caller]
pub fn cmd(actor: &str, text: &str) -> (UserId, Command) {
    match parse(text) {
        Ok(Input::Command(command)) => (u(actor), command),
        other => panic!("`{text}` is not a command: {other:?}"),
    }
}

pub fn policy() -> Policy {
    let services_by_project = [("PAY", "billing"), ("API", "api"), ("WEB", "web")]
        .into_iter()
        .map(|(project, service)| (project.to_string(), vec![s(service)]))
        .collect::<BTreeMap<_, _>>();
    Policy {
        approvers: ["alice", "bob"].into_iter().map(u).collect(),
        admins: ["oleg"].into_iter().map(u).collect(),
        four_eyes: true,
        services_by_project,
        conflict_groups: vec![ConflictGroup {
            name: g("backend-core"),
            services: ["api", "billing"]
                .into_iter()
                .map(s)
                .collect::<BTreeSet<_>>(),
        }],
        ..Policy::default()
    }
}

/// When the `n`-th event of a scenario (from 0) was recorded.
pub fn at(n: usize) -> DateTime<Utc> {
    let start = Utc
        .with_ymd_and_hms(2025, 3, 3, 10, 0, 0)
        .single()
        .expect("a valid date");
    start + Duration::minutes(n as i64)
}

pub fn t(text: &str) -> TicketKey {
    TicketKey::parse(text).expect("a test ticket")
}

pub fn u(text: &str) -> UserId {
    UserId::parse(text).expect("a test user")
}

pub fn g(text: &str) -> GroupName {
    GroupName::parse(text).expect("a test conflict group")
}

pub fn s(text: &str) -> ServiceName {
    ServiceName::parse(text).expect("a test service")
}

pub fn reason(text: &str) -> Reason {
    Reason::parse(text).expect("a test reason")
}

/// What `dobro TICKET https://wiki/x` by `by` records: the project's services, an admin needed.
pub fn requested(ticket: &str, by: &str) -> Event {
    let services = policy().services_of(&t(ticket));
    requested_on(ticket, by, &services, true)
}

/// The same with `no_need_admin`.
pub fn requested_no_admin(ticket: &str, by: &str) -> Event {
    let services = policy().services_of(&t(ticket));
    requested_on(ticket, by, &services, false)
}

pub fn requested_on(ticket: &str, by: &str, services: &[ServiceName], need_admin: bool) -> Event {
    Event::ReleaseRequested {
        ticket: t(ticket),
        requester: u(by),
        services: services.to_vec(),
        wiki: Some(WikiLink::parse("https://wiki/x").expect("a test link")),
        comment: String::new(),
        need_admin,
        tracker: None,
    }
}

pub fn approved(ticket: &str, by: &str) -> Event {
    Event::ReleaseApproved {
        ticket: t(ticket),
        approver: u(by),
    }
}

pub fn rejected(ticket: &str, by: &str, why: &str) -> Event {
    Event::ReleaseRejected {
        ticket: t(ticket),
        approver: u(by),
        reason: reason(why),
    }
}

pub fn cancelled(ticket: &str, by: &str) -> Event {
    Event::ReleaseCancelled {
        ticket: t(ticket),
        by: u(by),
    }
}

pub fn admin_joined(ticket: &str, admin: &str) -> Event {
    Event::AdminJoined {
        ticket: t(ticket),
        admin: u(admin),
    }
}

/// A start of the project's services, with their conflict groups from the fixture.
pub fn started(ticket: &str, by: &str) -> Event {
    started_on(ticket, by, &policy().services_of(&t(ticket)))
}

pub fn started_on(ticket: &str, by: &str, services: &[ServiceName]) -> Event {
    Event::DeploymentStarted {
        ticket: t(ticket),
        by: u(by),
        services: services.to_vec(),
        conflict_groups: policy().groups_of(services),
    }
}

pub fn finished(ticket: &str, by: &str) -> Event {
    Event::DeploymentFinished {
        ticket: t(ticket),
        by: u(by),
    }
}

pub fn alive(ticket: &str, by: &str, within_secs: u64) -> Event {
    Event::DeploymentAlive {
        ticket: t(ticket),
        by: u(by),
        within_secs,
    }
}

pub fn rolled_back(ticket: &str, by: &str, why: &str) -> Event {
    Event::DeploymentRolledBack {
        ticket: t(ticket),
        by: u(by),
        reason: reason(why),
    }
}

pub fn abandoned(ticket: &str, by: &str, why: &str, proposed_by: Option<&str>) -> Event {
    Event::DeploymentAbandoned {
        ticket: t(ticket),
        by: u(by),
        reason: reason(why),
        proposed_by: proposed_by.map(u),
    }
}

pub fn takeover_proposed(ticket: &str, by: &str, why: &str, second: Role) -> Event {
    Event::TakeoverProposed {
        ticket: t(ticket),
        by: u(by),
        reason: reason(why),
        second,
    }
}

pub fn frozen(by: &str, why: &str, services: Option<&[&str]>) -> Event {
    Event::FreezeStarted {
        by: u(by),
        reason: reason(why),
        services: services.map(|list| list.iter().map(|name| s(name)).collect()),
    }
}

pub fn unfrozen(by: &str) -> Event {
    Event::FreezeEnded { by: u(by) }
}

/// The system's reminder command.
pub fn remind(ticket: &str, kind: ReminderKind) -> (UserId, Command) {
    let command = Command::Remind {
        ticket: t(ticket),
        kind,
    };
    (system_actor(), command)
}

pub fn reminded(ticket: &str, kind: ReminderKind) -> Event {
    Event::ReminderSent {
        ticket: t(ticket),
        kind,
        by: system_actor(),
    }
}

/// Requested, accepted and joined by an admin: ready to start.
pub fn ready(ticket: &str, by: &str) -> [Event; 3] {
    [
        requested(ticket, by),
        approved(ticket, "alice"),
        admin_joined(ticket, "oleg"),
    ]
}

/// Ready and started by the requester.
pub fn deploying(ticket: &str, by: &str) -> [Event; 4] {
    let [r, a, j] = ready(ticket, by);
    [r, a, j, started(ticket, by)]
}

// --- dobro -----------------------------------------------------------------------------------

#[test]
fn dobro_requests_the_projects_services_with_an_admin() {
    Scenario::given([])
        .when(cmd("dev", "dobro #PAY-1 https://wiki/x fix the invoices"))
        .then([Event::ReleaseRequested {
            ticket: t("PAY-1"),
            requester: u("dev"),
            services: vec![s("billing")],
            wiki: Some(WikiLink::parse("https://wiki/x").unwrap()),
            comment: "fix the invoices".to_string(),
            need_admin: true,
            tracker: None,
        }]);
}

#[test]
fn dobro_takes_no_need_admin_and_named_services() {
    Scenario::given([])
        .when(cmd(
            "dev",
            "dobro PAY-1 https://wiki/x no_need_admin services=web,api,web",
        ))
        .then([requested_on("PAY-1", "dev", &[s("web"), s("api")], false)]);
}

#[test]
fn named_services_need_no_project_mapping() {
    Scenario::given([])
        .when(cmd("dev", "dobro OPS-4 https://wiki/x services=web"))
        .then([requested_on("OPS-4", "dev", &[s("web")], true)]);
}

#[test]
fn one_open_request_per_ticket() {
    let cases: [(Vec<Event>, ReleaseStatus); 3] = [
        (vec![requested("PAY-1", "dev")], ReleaseStatus::Requested),
        (
            vec![requested("PAY-1", "dev"), approved("PAY-1", "alice")],
            ReleaseStatus::Accepted,
        ),
        (deploying("PAY-1", "dev").to_vec(), ReleaseStatus::Deploying),
    ];
    for (given, status) in cases {
        Scenario::given(given)
            .when(cmd("eve", "dobro PAY-1 https://wiki/x again"))
            .then_refused(Refusal::AlreadyOpen {
                ticket: t("PAY-1"),
                status,
            });
    }
}

#[test]
fn a_ticket_may_be_requested_again_once_closed() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    let closed: [Vec<Event>; 4] = [
        vec![
            r.clone(),
            a.clone(),
            j.clone(),
            st.clone(),
            finished("PAY-1", "dev"),
        ],
        vec![r.clone(), a, j, st, rolled_back("PAY-1", "dev", "errors")],
        vec![r.clone(), cancelled("PAY-1", "dev")],
        vec![r, rejected("PAY-1", "bob", "not now")],
    ];
    for given in closed {
        Scenario::given(given)
            .when(cmd("dev", "dobro PAY-1 https://wiki/x"))
            .then([requested("PAY-1", "dev")]);
    }
}

#[test]
fn a_ticket_off_the_pattern_is_refused_naming_the_pattern() {
    Scenario::given([])
        .when(cmd("dev", "dobro P-1 https://wiki/x services=web"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("P-1"),
            failures: vec![CheckFailure::TicketPattern {
                pattern: "^[A-Z][A-Z0-9]+-[0-9]+$".to_string(),
            }],
        });
}

#[test]
fn the_pattern_comes_from_config() {
    Scenario::given([])
        .with_policy(|p| {
            p.checks = Policy::standard_checks(Regex::new("^(PAY|API)-[0-9]+$").unwrap(), true)
        })
        .when(cmd("dev", "dobro WEB-1 https://wiki/x"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("WEB-1"),
            failures: vec![CheckFailure::TicketPattern {
                pattern: "^(PAY|API)-[0-9]+$".to_string(),
            }],
        });
}

#[test]
fn a_request_without_a_wiki_link_is_refused() {
    Scenario::given([])
        .when(cmd("dev", "dobro PAY-1 ship it"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![CheckFailure::WikiLinkMissing],
        });
}

#[test]
fn an_ftp_link_is_not_a_wiki_link() {
    Scenario::given([])
        .when(cmd("dev", "dobro PAY-1 ftp://wiki/x"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![CheckFailure::WikiLinkMissing],
        });
}

#[test]
fn the_wiki_link_may_be_optional() {
    Scenario::given([])
        .with_policy(|p| {
            p.checks = Policy::standard_checks(Regex::new("^[A-Z]+-[0-9]+$").unwrap(), false)
        })
        .when(cmd("dev", "dobro PAY-1 ship it"))
        .then([Event::ReleaseRequested {
            ticket: t("PAY-1"),
            requester: u("dev"),
            services: vec![s("billing")],
            wiki: None,
            comment: "ship it".to_string(),
            need_admin: true,
            tracker: None,
        }]);
}

#[test]
fn a_project_without_services_is_refused() {
    Scenario::given([])
        .when(cmd("dev", "dobro OPS-1 https://wiki/x"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("OPS-1"),
            failures: vec![CheckFailure::NoServices {
                project: "OPS".to_string(),
            }],
        });
}

#[test]
fn every_failed_check_is_named() {
    Scenario::given([])
        .when(cmd("dev", "dobro X_Y-7 no notes"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("X_Y-7"),
            failures: vec![
                CheckFailure::TicketPattern {
                    pattern: "^[A-Z][A-Z0-9]+-[0-9]+$".to_string(),
                },
                CheckFailure::WikiLinkMissing,
                CheckFailure::NoServices {
                    project: "X_Y".to_string(),
                },
            ],
        });
}

// --- dobro against the tracker ----------------------------------------------------------------

/// What config requires of a ticket in the tracker in these scenarios: ready for release (or
/// any status in the done category), a fix version, an assignee, a story or a bug, labelled
/// `release`.
fn tracker_rules() -> TrackerRules {
    TrackerRules {
        statuses: vec!["Ready for release".to_string()],
        status_categories: vec!["done".to_string()],
        require_fix_version: true,
        require_assignee: true,
        issue_types: vec!["Story".to_string(), "Bug".to_string()],
        labels: vec!["release".to_string()],
        on_unavailable: OnUnavailable::Refuse,
    }
}

fn with_tracker(on_unavailable: OnUnavailable) -> impl FnOnce(&mut Policy) {
    move |p: &mut Policy| {
        p.tracker = Some(TrackerRules {
            on_unavailable,
            ..tracker_rules()
        })
    }
}

/// An issue that passes every check of `tracker_rules`.
fn ready_issue() -> Issue {
    Issue {
        summary: "Invoices round to the cent".to_string(),
        status: "Ready for release".to_string(),
        status_category: Some(StatusCategory {
            key: "indeterminate".to_string(),
            name: "In Progress".to_string(),
        }),
        issue_type: "Story".to_string(),
        fix_versions: vec!["2026.12".to_string()],
        assignee: Some("Dev Eloper".to_string()),
        labels: vec!["billing".to_string(), "release".to_string()],
    }
}

/// The command as the bot hands it to the ledger after asking the tracker.
fn looked_up(
    (actor, mut command): (UserId, Command),
    finding: TrackerFinding,
) -> (UserId, Command) {
    if let Command::Request(request) = &mut command {
        request.tracker = Some(finding);
    }
    (actor, command)
}

fn requested_with(ticket: &str, by: &str, tracker: TicketInTracker) -> Event {
    match requested(ticket, by) {
        Event::ReleaseRequested {
            ticket,
            requester,
            services,
            wiki,
            comment,
            need_admin,
            ..
        } => Event::ReleaseRequested {
            ticket,
            requester,
            services,
            wiki,
            comment,
            need_admin,
            tracker: Some(tracker),
        },
        other => other,
    }
}

const EVERY_CHECK: [TrackerCheck; 6] = [
    TrackerCheck::Exists,
    TrackerCheck::Status,
    TrackerCheck::FixVersion,
    TrackerCheck::Assignee,
    TrackerCheck::IssueType,
    TrackerCheck::Label,
];

#[test]
fn a_ready_ticket_is_requested_with_its_summary_status_and_the_checks_made() {
    let scenario = Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Refuse))
        .when(looked_up(
            cmd("dev", "dobro PAY-1 https://wiki/x"),
            TrackerFinding::Found(Box::new(ready_issue())),
        ))
        .then([requested_with(
            "PAY-1",
            "dev",
            TicketInTracker::Checked {
                summary: "Invoices round to the cent".to_string(),
                status: "Ready for release".to_string(),
                checks: EVERY_CHECK.to_vec(),
            },
        )]);
    let release = scenario.state().release(&t("PAY-1")).expect("open");
    assert!(matches!(
        &release.tracker,
        Some(TicketInTracker::Checked { summary, status, .. })
            if summary == "Invoices round to the cent" && status == "Ready for release"
    ));
}

#[test]
fn only_the_configured_checks_are_made() {
    Scenario::given([])
        .with_policy(|p| {
            p.tracker = Some(TrackerRules {
                require_fix_version: true,
                ..TrackerRules::default()
            })
        })
        .when(looked_up(
            cmd("dev", "dobro PAY-1 https://wiki/x"),
            TrackerFinding::Found(Box::new(Issue {
                status: "Open".to_string(),
                issue_type: "Epic".to_string(),
                assignee: None,
                labels: Vec::new(),
                ..ready_issue()
            })),
        ))
        .then([requested_with(
            "PAY-1",
            "dev",
            TicketInTracker::Checked {
                summary: "Invoices round to the cent".to_string(),
                status: "Open".to_string(),
                checks: vec![TrackerCheck::Exists, TrackerCheck::FixVersion],
            },
        )]);
}

#[test]
fn a_status_in_an_allowed_category_passes_whatever_its_name_or_case() {
    let closed = Issue {
        status: "Closed".to_string(),
        status_category: Some(StatusCategory {
            key: "done".to_string(),
            name: "Done".to_string(),
        }),
        ..ready_issue()
    };
    let named = Issue {
        status: "READY FOR RELEASE".to_string(),
        status_category: None,
        ..ready_issue()
    };
    for issue in [closed, named] {
        let status = issue.status.clone();
        Scenario::given([])
            .with_policy(with_tracker(OnUnavailable::Refuse))
            .when(looked_up(
                cmd("dev", "dobro PAY-1 https://wiki/x"),
                TrackerFinding::Found(Box::new(issue)),
            ))
            .then([requested_with(
                "PAY-1",
                "dev",
                TicketInTracker::Checked {
                    summary: "Invoices round to the cent".to_string(),
                    status,
                    checks: EVERY_CHECK.to_vec(),
                },
            )]);
    }
}

#[test]
fn a_ticket_not_ready_in_the_tracker_is_refused_naming_every_failed_check() {
    let not_ready = Issue {
        status: "In Progress".to_string(),
        fix_versions: Vec::new(),
        assignee: None,
        issue_type: "Epic".to_string(),
        labels: vec!["Release".to_string()],
        ..ready_issue()
    };
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Refuse))
        .when(looked_up(
            cmd("dev", "dobro PAY-1 no notes"),
            TrackerFinding::Found(Box::new(not_ready)),
        ))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![
                CheckFailure::WikiLinkMissing,
                CheckFailure::StatusNotAllowed {
                    status: "In Progress".to_string(),
                    statuses: vec!["Ready for release".to_string()],
                    status_categories: vec!["done".to_string()],
                },
                CheckFailure::NoFixVersion,
                CheckFailure::NoAssignee,
                CheckFailure::IssueTypeNotAllowed {
                    issue_type: "Epic".to_string(),
                    allowed: vec!["Story".to_string(), "Bug".to_string()],
                },
                CheckFailure::LabelMissing {
                    labels: vec!["release".to_string()],
                },
            ],
        });
}

#[test]
fn a_ticket_the_tracker_does_not_have_is_refused() {
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Allow))
        .when(looked_up(
            cmd("dev", "dobro PAY-1 https://wiki/x"),
            TrackerFinding::NotFound,
        ))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![CheckFailure::TicketNotFound],
        });
}

#[test]
fn an_unavailable_tracker_refuses_when_config_says_refuse() {
    let down = TrackerFinding::Unavailable {
        reason: "no answer within 3s".to_string(),
    };
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Refuse))
        .when(looked_up(cmd("dev", "dobro PAY-1 https://wiki/x"), down))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![CheckFailure::TrackerUnavailable {
                reason: "no answer within 3s".to_string(),
            }],
        });
}

#[test]
fn an_unavailable_tracker_lets_the_request_through_when_allowed_and_the_event_says_what_was_not_checked()
 {
    let down = TrackerFinding::Unavailable {
        reason: "HTTP 503".to_string(),
    };
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Allow))
        .when(looked_up(cmd("dev", "dobro PAY-1 https://wiki/x"), down))
        .then([requested_with(
            "PAY-1",
            "dev",
            TicketInTracker::NotChecked {
                cause: NotCheckedCause::Unavailable,
                reason: "HTTP 503".to_string(),
                checks: EVERY_CHECK.to_vec(),
            },
        )]);
}

#[test]
fn refused_credentials_are_a_configuration_error_under_the_same_policy() {
    let refused_credentials = || TrackerFinding::Misconfigured {
        reason: "HTTP 401".to_string(),
    };
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Refuse))
        .when(looked_up(
            cmd("dev", "dobro PAY-1 https://wiki/x"),
            refused_credentials(),
        ))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![CheckFailure::TrackerMisconfigured {
                reason: "HTTP 401".to_string(),
            }],
        });
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Allow))
        .when(looked_up(
            cmd("dev", "dobro PAY-1 https://wiki/x"),
            refused_credentials(),
        ))
        .then([requested_with(
            "PAY-1",
            "dev",
            TicketInTracker::NotChecked {
                cause: NotCheckedCause::Misconfigured,
                reason: "HTTP 401".to_string(),
                checks: EVERY_CHECK.to_vec(),
            },
        )]);
}

#[test]
fn a_request_that_never_asked_the_tracker_counts_as_unchecked() {
    Scenario::given([])
        .with_policy(with_tracker(OnUnavailable::Refuse))
        .when(cmd("dev", "dobro PAY-1 https://wiki/x"))
        .then_refused(Refusal::ChecksFailed {
            ticket: t("PAY-1"),
            failures: vec![CheckFailure::TrackerUnavailable {
                reason: "the tracker was not asked".to_string(),
            }],
        });
}

#[test]
fn an_open_ticket_is_refused_as_open_whatever_the_tracker_says() {
    Scenario::given([requested("PAY-1", "dev")])
        .with_policy(with_tracker(OnUnavailable::Refuse))
        .when(looked_up(
            cmd("eve", "dobro PAY-1 https://wiki/x"),
            TrackerFinding::NotFound,
        ))
        .then_refused(Refusal::AlreadyOpen {
            ticket: t("PAY-1"),
            status: ReleaseStatus::Requested,
        });
}

// --- accept ----------------------------------------------------------------------------------

#[test]
fn an_approver_accepts() {
    Scenario::given([requested("PAY-1", "dev")])
        .when(cmd("alice", "accept PAY-1"))
        .then([approved("PAY-1", "alice")]);
}

#[test]
fn only_approvers_accept() {
    for who in ["dev", "eve", "oleg"] {
        Scenario::given([requested("PAY-1", "dev")])
            .when(cmd(who, "accept PAY-1"))
            .then_refused(Refusal::NotAllowed {
                role: Role::Approver,
            });
    }
}

#[test]
fn four_eyes_an_approver_cannot_accept_their_own_release() {
    Scenario::given([requested("PAY-1", "alice")])
        .when(cmd("alice", "accept PAY-1"))
        .then_refused(Refusal::OwnRelease { ticket: t("PAY-1") })
        .when(cmd("bob", "accept PAY-1"))
        .then([approved("PAY-1", "bob")]);
}

#[test]
fn without_four_eyes_an_approver_accepts_their_own_release() {
    Scenario::given([requested("PAY-1", "alice")])
        .with_policy(|p| p.four_eyes = false)
        .when(cmd("alice", "accept PAY-1"))
        .then([approved("PAY-1", "alice")]);
}

#[test]
fn a_release_is_accepted_once() {
    Scenario::given([requested("PAY-1", "dev"), approved("PAY-1", "alice")])
        .when(cmd("bob", "accept PAY-1"))
        .then_refused(Refusal::AlreadyAccepted {
            ticket: t("PAY-1"),
            approver: u("alice"),
        });
}

#[test]
fn a_deploying_release_is_not_accepted_again() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("bob", "accept PAY-1"))
        .then_refused(Refusal::AlreadyDeploying { ticket: t("PAY-1") });
}

#[test]
fn commands_on_a_ticket_need_an_open_request() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    let histories: [Vec<Event>; 2] = [vec![], vec![r, a, j, st, finished("PAY-1", "dev")]];
    let commands = [
        ("alice", "accept PAY-1"),
        ("alice", "reject PAY-1 no"),
        ("dev", "cancel PAY-1"),
        ("oleg", "here PAY-1"),
        ("dev", "dep start PAY-1"),
        ("dev", "dep finish PAY-1"),
        ("dev", "dep rollback PAY-1 broken"),
    ];
    for given in histories {
        for (who, text) in commands {
            Scenario::given(given.clone())
                .when(cmd(who, text))
                .then_refused(Refusal::NoOpenRequest { ticket: t("PAY-1") });
        }
    }
}

// --- reject ----------------------------------------------------------------------------------

#[test]
fn an_approver_rejects_with_a_reason() {
    Scenario::given([requested("PAY-1", "dev")])
        .when(cmd("bob", "reject PAY-1 the notes are empty"))
        .then([rejected("PAY-1", "bob", "the notes are empty")]);
}

#[test]
fn an_accepted_release_can_still_be_rejected() {
    Scenario::given([requested("PAY-1", "dev"), approved("PAY-1", "alice")])
        .when(cmd("bob", "reject PAY-1 changed my mind"))
        .then([rejected("PAY-1", "bob", "changed my mind")]);
}

#[test]
fn only_approvers_reject() {
    for who in ["dev", "oleg"] {
        Scenario::given([requested("PAY-1", "dev")])
            .when(cmd(who, "reject PAY-1 nope"))
            .then_refused(Refusal::NotAllowed {
                role: Role::Approver,
            });
    }
}

#[test]
fn a_reject_needs_a_reason() {
    assert_eq!(
        parse("reject PAY-1"),
        Err(ParseError::Missing {
            verb: "reject",
            what: "a reason"
        })
    );
}

#[test]
fn a_deploying_release_is_not_rejected() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("bob", "reject PAY-1 too late"))
        .then_refused(Refusal::AlreadyDeploying { ticket: t("PAY-1") });
}

// --- cancel ----------------------------------------------------------------------------------

#[test]
fn the_requester_or_an_approver_cancels() {
    for who in ["dev", "bob"] {
        Scenario::given([requested("PAY-1", "dev"), approved("PAY-1", "alice")])
            .when(cmd(who, "cancel PAY-1"))
            .then([cancelled("PAY-1", who)]);
    }
}

#[test]
fn nobody_else_cancels() {
    for who in ["eve", "oleg"] {
        Scenario::given([requested("PAY-1", "dev")])
            .when(cmd(who, "cancel PAY-1"))
            .then_refused(Refusal::NotAllowed {
                role: Role::RequesterOrApprover,
            });
    }
}

#[test]
fn a_deploying_release_is_not_cancelled() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("dev", "cancel PAY-1"))
        .then_refused(Refusal::AlreadyDeploying { ticket: t("PAY-1") });
}

// --- here ------------------------------------------------------------------------------------

#[test]
fn an_admin_joins_a_release_that_needs_one() {
    Scenario::given([requested("PAY-1", "dev")])
        .when(cmd("oleg", "here PAY-1"))
        .then([admin_joined("PAY-1", "oleg")]);
}

#[test]
fn only_admins_join() {
    for who in ["dev", "alice"] {
        Scenario::given([requested("PAY-1", "dev")])
            .when(cmd(who, "here PAY-1"))
            .then_refused(Refusal::NotAllowed { role: Role::Admin });
    }
}

#[test]
fn an_admin_joins_only_when_needed() {
    Scenario::given([requested_no_admin("PAY-1", "dev")])
        .when(cmd("oleg", "here PAY-1"))
        .then_refused(Refusal::AdminNotNeeded { ticket: t("PAY-1") });
}

#[test]
fn an_admin_joins_only_once() {
    Scenario::given([requested("PAY-1", "dev"), admin_joined("PAY-1", "oleg")])
        .with_policy(|p| {
            p.admins.insert(u("ivan"));
        })
        .when(cmd("ivan", "here PAY-1"))
        .then_refused(Refusal::AdminAlreadyJoined {
            ticket: t("PAY-1"),
            admin: u("oleg"),
        });
}

#[test]
fn an_admin_does_not_join_a_deploying_release() {
    Scenario::given([
        requested("PAY-1", "dev"),
        approved("PAY-1", "alice"),
        admin_joined("PAY-1", "oleg"),
        started("PAY-1", "oleg"),
    ])
    .when(cmd("oleg", "here PAY-1"))
    .then_refused(Refusal::AlreadyDeploying { ticket: t("PAY-1") });
}

// --- dep start -------------------------------------------------------------------------------

#[test]
fn the_requester_starts_a_ready_release_locking_its_services_and_groups() {
    let scenario = Scenario::given(ready("PAY-1", "dev"))
        .when(cmd("dev", "dep start PAY-1"))
        .then([Event::DeploymentStarted {
            ticket: t("PAY-1"),
            by: u("dev"),
            services: vec![s("billing")],
            conflict_groups: vec![g("backend-core")],
        }]);
    let locks: Vec<&LockKey> = scenario.state().locks.keys().collect();
    assert_eq!(
        locks,
        [
            &LockKey::Service(s("billing")),
            &LockKey::Group(g("backend-core"))
        ]
    );
}

#[test]
fn an_admin_starts_anyones_release() {
    Scenario::given(ready("PAY-1", "dev"))
        .when(cmd("oleg", "dep start PAY-1"))
        .then([started("PAY-1", "oleg")]);
}

#[test]
fn nobody_else_starts() {
    for who in ["eve", "alice"] {
        Scenario::given(ready("PAY-1", "dev"))
            .when(cmd(who, "dep start PAY-1"))
            .then_refused(Refusal::NotAllowed {
                role: Role::RequesterOrAdmin,
            });
    }
}

#[test]
fn a_start_needs_an_accepted_release() {
    Scenario::given([requested_no_admin("PAY-1", "dev")])
        .when(cmd("dev", "dep start PAY-1"))
        .then_refused(Refusal::NotAccepted { ticket: t("PAY-1") });
}

#[test]
fn a_start_needs_the_admin_to_have_joined() {
    Scenario::given([requested("PAY-1", "bob"), approved("PAY-1", "alice")])
        .when(cmd("bob", "dep start PAY-1"))
        .then_refused(Refusal::AdminRequired { ticket: t("PAY-1") });
}

#[test]
fn an_admin_who_starts_a_release_waiting_for_an_admin_joins_it_by_starting() {
    let scenario = Scenario::given([requested("PAY-1", "dev"), approved("PAY-1", "alice")])
        .when(cmd("oleg", "dep start PAY-1"))
        .then([admin_joined("PAY-1", "oleg"), started("PAY-1", "oleg")]);
    let release = scenario.state().release(&t("PAY-1")).unwrap();
    assert_eq!(release.status(), ReleaseStatus::Deploying);
    assert!(matches!(
        &release.admin,
        super::state::AdminPresence::Joined { admin, .. } if admin == &u("oleg")
    ));
}

#[test]
fn an_admin_joins_by_starting_only_a_release_that_waits_for_one() {
    // Joined already, or no admin needed: the start alone.
    Scenario::given(ready("PAY-1", "dev"))
        .when(cmd("oleg", "dep start PAY-1"))
        .then([started("PAY-1", "oleg")]);
    Scenario::given([
        requested_no_admin("PAY-1", "dev"),
        approved("PAY-1", "alice"),
    ])
    .when(cmd("oleg", "dep start PAY-1"))
    .then([started("PAY-1", "oleg")]);
}

#[test]
fn a_requester_who_is_an_admin_still_needs_another_admin() {
    Scenario::given([requested("PAY-1", "oleg"), approved("PAY-1", "alice")])
        .when(cmd("oleg", "dep start PAY-1"))
        .then_refused(Refusal::AdminRequired { ticket: t("PAY-1") });
}

#[test]
fn an_admin_joins_by_starting_only_when_nothing_else_blocks_the_start() {
    // Every other blocker counts as if the admin had joined, and a refused start records the
    // refusal alone (`then_refused` checks the state did not change: no join on its own).
    let [ra, aa, ja, sa] = deploying("API-1", "eve");
    Scenario::given([
        ra,
        aa,
        ja,
        sa,
        requested("PAY-1", "dev"),
        approved("PAY-1", "alice"),
    ])
    .when(cmd("oleg", "dep start PAY-1"))
    .then_refused(Refusal::LockHeld {
        lock: LockKey::Group(g("backend-core")),
        ticket: t("API-1"),
        by: u("eve"),
        since: at(3),
    });
    Scenario::given([requested("PAY-1", "dev")])
        .when(cmd("oleg", "dep start PAY-1"))
        .then_refused(Refusal::NotAccepted { ticket: t("PAY-1") });
    Scenario::given([
        requested("PAY-1", "dev"),
        approved("PAY-1", "alice"),
        frozen("bob", "audit", None),
    ])
    .when(cmd("oleg", "dep start PAY-1"))
    .then_refused(Refusal::Frozen {
        by: u("bob"),
        since: at(2),
        reason: reason("audit"),
        services: None,
    })
    .when(cmd("alice", "unfreeze"))
    .then([unfrozen("alice")])
    .when(cmd("oleg", "dep start PAY-1"))
    .then([admin_joined("PAY-1", "oleg"), started("PAY-1", "oleg")]);
}

#[test]
fn an_admin_joining_by_starting_still_waits_for_an_earlier_request() {
    let [r, a, j] = ready("PAY-1", "eve");
    Scenario::given([
        r,
        a,
        j,
        requested("PAY-2", "dev"),
        approved("PAY-2", "alice"),
    ])
    .when(cmd("oleg", "dep start PAY-2"))
    .then_refused(Refusal::NotYourTurn {
        ticket: t("PAY-2"),
        ahead: t("PAY-1"),
        over: LockKey::Service(s("billing")),
    });
}

#[test]
fn no_need_admin_starts_without_an_admin() {
    Scenario::given([
        requested_no_admin("WEB-1", "dev"),
        approved("WEB-1", "alice"),
    ])
    .when(cmd("dev", "dep start WEB-1"))
    .then([Event::DeploymentStarted {
        ticket: t("WEB-1"),
        by: u("dev"),
        services: vec![s("web")],
        conflict_groups: vec![],
    }]);
}

#[test]
fn the_first_blocker_is_reported() {
    Scenario::given([requested("PAY-1", "dev"), frozen("alice", "audit", None)])
        .when(cmd("dev", "dep start PAY-1"))
        .then_refused(Refusal::NotAccepted { ticket: t("PAY-1") });
}

#[test]
fn a_freeze_of_everything_stops_a_start() {
    let [r, a, j] = ready("PAY-1", "dev");
    Scenario::given([r, a, j, frozen("bob", "black friday", None)])
        .when(cmd("dev", "dep start PAY-1"))
        .then_refused(Refusal::Frozen {
            by: u("bob"),
            since: at(3),
            reason: reason("black friday"),
            services: None,
        });
}

#[test]
fn a_freeze_of_its_services_stops_a_start() {
    let [r, a, j] = ready("PAY-1", "dev");
    Scenario::given([
        frozen("bob", "db migration", Some(&["web", "billing"])),
        r,
        a,
        j,
    ])
    .when(cmd("dev", "dep start PAY-1"))
    .then_refused(Refusal::Frozen {
        by: u("bob"),
        since: at(0),
        reason: reason("db migration"),
        services: Some(vec![s("web"), s("billing")]),
    });
}

#[test]
fn a_freeze_of_other_services_does_not() {
    let [r, a, j] = ready("API-1", "dev");
    Scenario::given([frozen("bob", "db migration", Some(&["billing"])), r, a, j])
        .when(cmd("dev", "dep start API-1"))
        .then([started("API-1", "dev")]);
}

#[test]
fn a_start_after_unfreeze_goes_ahead() {
    let [r, a, j] = ready("PAY-1", "dev");
    Scenario::given([frozen("bob", "audit", None), r, a, j, unfrozen("alice")])
        .when(cmd("dev", "dep start PAY-1"))
        .then([started("PAY-1", "dev")]);
}

#[test]
fn a_lock_on_the_same_service_names_its_holder() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    let [r2, a2, j2] = ready("PAY-2", "eve");
    Scenario::given([r, a, j, st, r2, a2, j2])
        .when(cmd("eve", "dep start PAY-2"))
        .then_refused(Refusal::LockHeld {
            lock: LockKey::Service(s("billing")),
            ticket: t("PAY-1"),
            by: u("dev"),
            since: at(3),
        });
}

#[test]
fn a_lock_on_the_conflict_group_names_its_holder() {
    let [r, a, j] = ready("PAY-1", "eve");
    let [ra, aa, ja, sa] = deploying("API-1", "dev");
    Scenario::given([r, a, j, ra, aa, ja, sa])
        .when(cmd("eve", "dep start PAY-1"))
        .then_refused(Refusal::LockHeld {
            lock: LockKey::Group(g("backend-core")),
            ticket: t("API-1"),
            by: u("dev"),
            since: at(6),
        });
}

#[test]
fn a_service_outside_the_group_deploys_alongside() {
    let [ra, aa, ja, sa] = deploying("API-1", "dev");
    let [r, a, j] = ready("WEB-1", "eve");
    Scenario::given([ra, aa, ja, sa, r, a, j])
        .when(cmd("eve", "dep start WEB-1"))
        .then([started("WEB-1", "eve")]);
}

#[test]
fn finish_and_rollback_free_the_locks() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    let [r2, a2, j2] = ready("PAY-2", "eve");
    for end in [
        finished("PAY-1", "dev"),
        rolled_back("PAY-1", "oleg", "5xx"),
    ] {
        let given = [
            r.clone(),
            a.clone(),
            j.clone(),
            st.clone(),
            r2.clone(),
            a2.clone(),
            j2.clone(),
            end,
        ];
        let scenario = Scenario::given(given);
        assert!(scenario.state().locks.is_empty());
        assert!(scenario.state().release(&t("PAY-1")).is_none());
        scenario
            .when(cmd("eve", "dep start PAY-2"))
            .then([started("PAY-2", "eve")]);
    }
}

#[test]
fn an_earlier_ready_request_for_the_same_service_goes_first() {
    let [r, a, j] = ready("PAY-1", "dev");
    let [r2, a2, j2] = ready("PAY-2", "eve");
    Scenario::given([r, a, j, r2, a2, j2])
        .when(cmd("eve", "dep start PAY-2"))
        .then_refused(Refusal::NotYourTurn {
            ticket: t("PAY-2"),
            ahead: t("PAY-1"),
            over: LockKey::Service(s("billing")),
        })
        .when(cmd("dev", "dep start PAY-1"))
        .then([started("PAY-1", "dev")])
        .when(cmd("dev", "dep finish PAY-1"))
        .then([finished("PAY-1", "dev")])
        .when(cmd("eve", "dep start PAY-2"))
        .then([started("PAY-2", "eve")]);
}

#[test]
fn an_earlier_request_that_is_not_ready_does_not_hold_up_the_line() {
    let [r2, a2, j2] = ready("PAY-2", "eve");
    for earlier in [
        vec![requested("PAY-1", "dev")],
        vec![requested("PAY-1", "dev"), approved("PAY-1", "alice")],
    ] {
        let given = earlier
            .into_iter()
            .chain([r2.clone(), a2.clone(), j2.clone()]);
        Scenario::given(given)
            .when(cmd("eve", "dep start PAY-2"))
            .then([started("PAY-2", "eve")]);
    }
}

#[test]
fn an_earlier_ready_request_in_the_same_conflict_group_goes_first() {
    // api and billing are in backend-core: whichever was requested first goes first, either way.
    for (first, second) in [("API-1", "PAY-1"), ("PAY-1", "API-1")] {
        let [r1, a1, j1] = ready(first, "dev");
        let [r2, a2, j2] = ready(second, "eve");
        Scenario::given([r1, a1, j1, r2, a2, j2])
            .when(cmd("eve", &format!("dep start {second}")))
            .then_refused(Refusal::NotYourTurn {
                ticket: t(second),
                ahead: t(first),
                over: LockKey::Group(g("backend-core")),
            })
            .when(cmd("dev", &format!("dep start {first}")))
            .then([started(first, "dev")])
            .when(cmd("eve", &format!("dep start {second}")))
            .then_refused(Refusal::LockHeld {
                lock: LockKey::Group(g("backend-core")),
                ticket: t(first),
                by: u("dev"),
                since: at(7),
            })
            .when(cmd("dev", &format!("dep finish {first}")))
            .then([finished(first, "dev")])
            .when(cmd("eve", &format!("dep start {second}")))
            .then([started(second, "eve")]);
    }
}

#[test]
fn a_shared_service_is_named_before_a_shared_group() {
    let [r1, a1, j1] = ready("PAY-1", "dev");
    let [r2, a2, j2] = ready("PAY-2", "eve");
    Scenario::given([r1, a1, j1, r2, a2, j2])
        .when(cmd("eve", "dep start PAY-2"))
        .then_refused(Refusal::NotYourTurn {
            ticket: t("PAY-2"),
            ahead: t("PAY-1"),
            over: LockKey::Service(s("billing")),
        });
}

#[test]
fn the_turn_does_not_span_services_outside_a_shared_group() {
    let [ra, aa, ja] = ready("API-1", "dev");
    let [r, a, j] = ready("WEB-1", "eve");
    Scenario::given([ra, aa, ja, r, a, j])
        .when(cmd("eve", "dep start WEB-1"))
        .then([started("WEB-1", "eve")]);
}

#[test]
fn a_conflict_group_removed_from_the_policy_no_longer_orders_the_line() {
    let [ra, aa, ja] = ready("API-1", "dev");
    let [r, a, j] = ready("PAY-1", "eve");
    Scenario::given([ra, aa, ja, r, a, j])
        .with_policy(|p| p.conflict_groups.clear())
        .when(cmd("eve", "dep start PAY-1"))
        .then([Event::DeploymentStarted {
            ticket: t("PAY-1"),
            by: u("eve"),
            services: vec![s("billing")],
            conflict_groups: vec![],
        }]);
}

#[test]
fn a_deploying_release_does_not_start_again() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("dev", "dep start PAY-1"))
        .then_refused(Refusal::AlreadyDeploying { ticket: t("PAY-1") });
}

// --- dep finish / dep rollback ---------------------------------------------------------------

#[test]
fn the_requester_or_an_admin_finishes() {
    for who in ["dev", "oleg"] {
        let scenario = Scenario::given(deploying("PAY-1", "dev"))
            .when(cmd(who, "dep finish PAY-1"))
            .then([finished("PAY-1", who)]);
        assert!(scenario.state().locks.is_empty());
        assert!(scenario.state().releases.is_empty());
    }
}

#[test]
fn the_requester_or_an_admin_rolls_back_with_a_reason() {
    for who in ["dev", "oleg"] {
        let scenario = Scenario::given(deploying("PAY-1", "dev"))
            .when(cmd(who, "dep rollback PAY-1 error rate up"))
            .then([rolled_back("PAY-1", who, "error rate up")]);
        assert!(scenario.state().locks.is_empty());
        assert!(scenario.state().releases.is_empty());
    }
    assert_eq!(
        parse("dep rollback PAY-1"),
        Err(ParseError::Missing {
            verb: "dep rollback",
            what: "a reason"
        })
    );
}

#[test]
fn nobody_else_finishes_or_rolls_back() {
    for text in ["dep finish PAY-1", "dep rollback PAY-1 oops"] {
        for who in ["eve", "alice"] {
            Scenario::given(deploying("PAY-1", "dev"))
                .when(cmd(who, text))
                .then_refused(Refusal::NotAllowed {
                    role: Role::RequesterOrAdmin,
                });
        }
    }
}

#[test]
fn only_a_started_deployment_finishes_or_rolls_back() {
    for text in ["dep finish PAY-1", "dep rollback PAY-1 oops"] {
        Scenario::given(ready("PAY-1", "dev"))
            .when(cmd("dev", text))
            .then_refused(Refusal::NotDeploying { ticket: t("PAY-1") });
    }
}

#[test]
fn a_freeze_does_not_stop_a_finish() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    Scenario::given([r, a, j, st, frozen("bob", "incident", None)])
        .when(cmd("dev", "dep finish PAY-1"))
        .then([finished("PAY-1", "dev")]);
}

// --- dep takeover ----------------------------------------------------------------------------

/// How long the fixture's policy makes a deployment wait before an admin alone takes it over.
fn takeover_after() -> Duration {
    Duration::seconds(policy().takeover_after_secs as i64)
}

#[test]
fn only_an_admin_takes_over() {
    for who in ["dev", "eve", "alice"] {
        Scenario::given(deploying("PAY-1", "dev"))
            .later(takeover_after())
            .when(cmd(who, "dep takeover PAY-1 runner gone"))
            .then_refused(Refusal::NotAllowed { role: Role::Admin });
    }
}

#[test]
fn a_deployment_younger_than_the_minimum_is_not_taken_over() {
    // Started at at(3), decided at at(4): one minute old.
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("oleg", "dep takeover PAY-1 runner gone"))
        .then_refused(Refusal::TakeoverTooSoon {
            ticket: t("PAY-1"),
            since: at(3),
            after_secs: 30 * 60,
        })
        // Recorded at at(4), the next is decided at at(5) + 27 min: 29 minutes old.
        .later(takeover_after() - Duration::minutes(3))
        .when(cmd("oleg", "dep takeover PAY-1 runner gone"))
        .then_refused(Refusal::TakeoverTooSoon {
            ticket: t("PAY-1"),
            since: at(3),
            after_secs: 30 * 60,
        });
}

#[test]
fn an_admin_takes_over_a_stuck_deployment_freeing_its_locks_for_the_next_start() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    let [r2, a2, j2] = ready("API-1", "eve");
    let scenario = Scenario::given([r, a, j, st, r2, a2, j2])
        .when(cmd("eve", "dep start API-1"))
        .then_refused(Refusal::LockHeld {
            lock: LockKey::Group(g("backend-core")),
            ticket: t("PAY-1"),
            by: u("dev"),
            since: at(3),
        })
        .later(takeover_after())
        .when(cmd("oleg", "dep takeover PAY-1 the pipeline crashed"))
        .then([abandoned("PAY-1", "oleg", "the pipeline crashed", None)]);
    assert!(scenario.state().locks.is_empty());
    assert!(scenario.state().release(&t("PAY-1")).is_none());
    scenario
        .when(cmd("eve", "dep start API-1"))
        .then([started("API-1", "eve")]);
}

#[test]
fn only_a_running_deployment_is_taken_over() {
    Scenario::given(ready("PAY-1", "dev"))
        .later(takeover_after())
        .when(cmd("oleg", "dep takeover PAY-1 stuck"))
        .then_refused(Refusal::NotDeploying { ticket: t("PAY-1") })
        .when(cmd("oleg", "dep takeover PAY-1 --force stuck"))
        .then_refused(Refusal::NotDeploying { ticket: t("PAY-1") });
    Scenario::given([])
        .when(cmd("oleg", "dep takeover PAY-1 stuck"))
        .then_refused(Refusal::NoOpenRequest { ticket: t("PAY-1") });
}

#[test]
fn a_forced_takeover_by_an_approver_and_an_admin_ends_a_young_deployment() {
    // Either may go first; the second needs the role the first lacks.
    let cases = [
        ("alice", Role::Admin, "oleg"),
        ("oleg", Role::Approver, "bob"),
    ];
    for (first, second_role, second) in cases {
        let scenario = Scenario::given(deploying("PAY-1", "dev"))
            .when(cmd(first, "dep takeover PAY-1 --force runner OOM-killed"))
            .then([takeover_proposed(
                "PAY-1",
                first,
                "runner OOM-killed",
                second_role,
            )]);
        assert_eq!(scenario.state().locks.len(), 2, "a proposal frees nothing");
        scenario
            .when(cmd(second, "dep takeover PAY-1 --force"))
            .then([abandoned("PAY-1", second, "runner OOM-killed", Some(first))])
            .when(cmd("dev", "dep finish PAY-1"))
            .then_refused(Refusal::NoOpenRequest { ticket: t("PAY-1") });
    }
}

#[test]
fn a_forced_takeover_needs_an_admin_or_an_approver_to_propose_it() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("dev", "dep takeover PAY-1 --force my runner died"))
        .then_refused(Refusal::NotAllowed {
            role: Role::AdminOrApprover,
        });
}

#[test]
fn a_forced_takeover_is_not_confirmed_by_the_person_who_proposed_it() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("oleg", "dep takeover PAY-1 --force runner gone"))
        .then([takeover_proposed(
            "PAY-1",
            "oleg",
            "runner gone",
            Role::Approver,
        )])
        .when(cmd("oleg", "dep takeover PAY-1 --force"))
        .then_refused(Refusal::TakeoverAlreadyProposed {
            ticket: t("PAY-1"),
            by: u("oleg"),
        })
        .when(cmd("oleg", "dep takeover PAY-1 --force really gone"))
        .then_refused(Refusal::TakeoverAlreadyProposed {
            ticket: t("PAY-1"),
            by: u("oleg"),
        });
}

#[test]
fn a_forced_takeover_is_not_confirmed_by_someone_of_the_same_role() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("alice", "dep takeover PAY-1 --force runner gone"))
        .then([takeover_proposed(
            "PAY-1",
            "alice",
            "runner gone",
            Role::Admin,
        )])
        .when(cmd("bob", "dep takeover PAY-1 --force"))
        .then_refused(Refusal::TakeoverNeedsSecond {
            ticket: t("PAY-1"),
            proposed_by: u("alice"),
            role: Role::Admin,
        })
        .when(cmd("eve", "dep takeover PAY-1 --force"))
        .then_refused(Refusal::NotAllowed {
            role: Role::AdminOrApprover,
        })
        .when(cmd("oleg", "dep takeover PAY-1 --force"))
        .then([abandoned("PAY-1", "oleg", "runner gone", Some("alice"))]);
}

#[test]
fn someone_with_both_roles_may_be_seconded_by_either() {
    Scenario::given(deploying("PAY-1", "dev"))
        .with_policy(|p| {
            p.admins.insert(u("alice"));
        })
        .when(cmd("alice", "dep takeover PAY-1 --force runner gone"))
        .then([takeover_proposed(
            "PAY-1",
            "alice",
            "runner gone",
            Role::AdminOrApprover,
        )])
        .when(cmd("bob", "dep takeover PAY-1 --force"))
        .then([abandoned("PAY-1", "bob", "runner gone", Some("alice"))]);
}

#[test]
fn confirming_needs_a_proposal() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("oleg", "dep takeover PAY-1 --force"))
        .then_refused(Refusal::NoTakeoverProposed { ticket: t("PAY-1") });
}

#[test]
fn an_old_deployment_is_taken_over_by_an_admin_alone_even_with_a_proposal_pending() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("alice", "dep takeover PAY-1 --force runner gone"))
        .then([takeover_proposed(
            "PAY-1",
            "alice",
            "runner gone",
            Role::Admin,
        )])
        .later(takeover_after())
        .when(cmd("oleg", "dep takeover PAY-1 nobody answers"))
        .then([abandoned("PAY-1", "oleg", "nobody answers", None)]);
}

#[test]
fn a_proposal_ends_with_its_deployment() {
    let [r, a, j, st] = deploying("PAY-1", "dev");
    Scenario::given([
        r.clone(),
        a.clone(),
        j.clone(),
        st.clone(),
        takeover_proposed("PAY-1", "alice", "stuck", Role::Admin),
        finished("PAY-1", "dev"),
        r,
        a,
        j,
        st,
    ])
    .when(cmd("oleg", "dep takeover PAY-1 --force"))
    .then_refused(Refusal::NoTakeoverProposed { ticket: t("PAY-1") });
}

#[test]
fn the_takeover_minimum_comes_from_the_policy() {
    Scenario::given(deploying("PAY-1", "dev"))
        .with_policy(|p| p.takeover_after_secs = 60)
        .when(cmd("oleg", "dep takeover PAY-1 stuck"))
        .then([abandoned("PAY-1", "oleg", "stuck", None)]);
}

// --- freeze / unfreeze -----------------------------------------------------------------------

#[test]
fn an_approver_freezes_everything_or_some_services() {
    Scenario::given([])
        .when(cmd("alice", "freeze black friday"))
        .then([frozen("alice", "black friday", None)]);
    Scenario::given([])
        .when(cmd("bob", "freeze db migration services=billing,api"))
        .then([frozen("bob", "db migration", Some(&["billing", "api"]))]);
}

#[test]
fn only_approvers_freeze_and_unfreeze() {
    for who in ["dev", "oleg"] {
        Scenario::given([])
            .when(cmd(who, "freeze because"))
            .then_refused(Refusal::NotAllowed {
                role: Role::Approver,
            });
        Scenario::given([frozen("alice", "audit", None)])
            .when(cmd(who, "unfreeze"))
            .then_refused(Refusal::NotAllowed {
                role: Role::Approver,
            });
    }
}

#[test]
fn one_freeze_at_a_time() {
    Scenario::given([requested("PAY-1", "dev"), frozen("alice", "audit", None)])
        .when(cmd("bob", "freeze another services=web"))
        .then_refused(Refusal::AlreadyFrozen {
            by: u("alice"),
            since: at(1),
        });
}

#[test]
fn unfreeze_ends_the_freeze_and_needs_one() {
    Scenario::given([frozen("alice", "audit", Some(&["web"]))])
        .when(cmd("bob", "unfreeze"))
        .then([unfrozen("bob")])
        .when(cmd("bob", "unfreeze"))
        .then_refused(Refusal::NotFrozen);
}

// --- recording refusals ----------------------------------------------------------------------

#[test]
fn a_refusal_is_recorded_with_who_what_and_why() {
    let (actor, command) = cmd("eve", "dep start PAY-1");
    let refusal = Refusal::NoOpenRequest { ticket: t("PAY-1") };
    assert_eq!(
        refused(&actor, &command, refusal.clone()),
        Event::CommandRefused {
            by: u("eve"),
            command: "dep start".to_string(),
            ticket: Some(t("PAY-1")),
            refusal,
        }
    );
    let (actor, command) = cmd("eve", "freeze nope");
    let refusal = Refusal::NotAllowed {
        role: Role::Approver,
    };
    assert_eq!(
        refused(&actor, &command, refusal.clone()),
        Event::CommandRefused {
            by: u("eve"),
            command: "freeze".to_string(),
            ticket: None,
            refusal,
        }
    );
}

// --- reminders -------------------------------------------------------------------------------

use ReminderKind::{Approval, Escalation, OverdueDeployment, StaleLock};

#[test]
fn a_request_waiting_for_approval_is_reminded_once_then_escalated_once() {
    Scenario::given([requested("PAY-1", "dev")])
        .when(remind("PAY-1", Approval))
        .then([reminded("PAY-1", Approval)])
        .when(remind("PAY-1", Approval))
        .then_refused(Refusal::AlreadyReminded {
            ticket: t("PAY-1"),
            reminder: Approval,
        })
        .when(remind("PAY-1", Escalation))
        .then([reminded("PAY-1", Escalation)])
        .when(remind("PAY-1", Escalation))
        .then_refused(Refusal::AlreadyReminded {
            ticket: t("PAY-1"),
            reminder: Escalation,
        });
}

#[test]
fn approval_reminders_stop_once_the_request_is_accepted() {
    for kind in [Approval, Escalation] {
        Scenario::given([requested("PAY-1", "dev"), approved("PAY-1", "alice")])
            .when(remind("PAY-1", kind))
            .then_refused(Refusal::ReminderOutOfStage {
                ticket: t("PAY-1"),
                reminder: kind,
                status: ReleaseStatus::Accepted,
            });
    }
}

#[test]
fn deployment_reminders_are_only_about_a_running_deployment() {
    for kind in [OverdueDeployment, StaleLock] {
        Scenario::given([requested("PAY-1", "dev")])
            .when(remind("PAY-1", kind))
            .then_refused(Refusal::ReminderOutOfStage {
                ticket: t("PAY-1"),
                reminder: kind,
                status: ReleaseStatus::Requested,
            });
        Scenario::given(deploying("PAY-1", "dev"))
            .when(remind("PAY-1", kind))
            .then([reminded("PAY-1", kind)])
            .when(remind("PAY-1", kind))
            .then_refused(Refusal::AlreadyReminded {
                ticket: t("PAY-1"),
                reminder: kind,
            });
    }
    Scenario::given(deploying("PAY-1", "dev"))
        .when(remind("PAY-1", Approval))
        .then_refused(Refusal::ReminderOutOfStage {
            ticket: t("PAY-1"),
            reminder: Approval,
            status: ReleaseStatus::Deploying,
        });
}

#[test]
fn a_closed_release_gets_no_reminder() {
    let closed = [
        vec![requested("PAY-1", "dev"), cancelled("PAY-1", "dev")],
        vec![requested("PAY-1", "dev"), rejected("PAY-1", "bob", "no")],
        [
            deploying("PAY-1", "dev").to_vec(),
            vec![finished("PAY-1", "dev")],
        ]
        .concat(),
        [
            deploying("PAY-1", "dev").to_vec(),
            vec![rolled_back("PAY-1", "dev", "5xx")],
        ]
        .concat(),
    ];
    for given in closed {
        for kind in ReminderKind::ALL {
            Scenario::given(given.clone())
                .when(remind("PAY-1", kind))
                .then_refused(Refusal::NoOpenRequest { ticket: t("PAY-1") });
        }
    }
}

#[test]
fn a_new_request_for_the_same_ticket_is_reminded_afresh() {
    Scenario::given([
        requested("PAY-1", "dev"),
        reminded("PAY-1", Approval),
        reminded("PAY-1", Escalation),
        cancelled("PAY-1", "dev"),
        requested("PAY-1", "dev"),
    ])
    .when(remind("PAY-1", Approval))
    .then([reminded("PAY-1", Approval)]);
}

#[test]
fn the_state_keeps_the_reminders_of_the_current_stage_only() {
    let scenario = Scenario::given([
        requested("PAY-1", "dev"),
        reminded("PAY-1", Approval),
        // A fact that does not fit the stage (from another version) changes nothing.
        reminded("PAY-1", StaleLock),
    ]);
    let sent = |scenario: &Scenario| scenario.state().releases[&t("PAY-1")].reminders.clone();
    assert_eq!(sent(&scenario), BTreeSet::from([Approval]));
    let scenario = Scenario::given([
        requested("PAY-1", "dev"),
        reminded("PAY-1", Approval),
        approved("PAY-1", "alice"),
    ]);
    assert_eq!(sent(&scenario), BTreeSet::new());
    let mut given = deploying("PAY-1", "dev").to_vec();
    given.insert(1, reminded("PAY-1", Escalation));
    given.push(reminded("PAY-1", OverdueDeployment));
    assert_eq!(
        sent(&Scenario::given(given)),
        BTreeSet::from([OverdueDeployment])
    );
}

#[test]
fn a_reminder_changes_nothing_but_the_reminders_sent() {
    let before = Scenario::given(deploying("PAY-1", "dev"));
    let after = Scenario::given(deploying("PAY-1", "dev"))
        .when(remind("PAY-1", OverdueDeployment))
        .then([reminded("PAY-1", OverdueDeployment)]);
    assert_eq!(before.queue(), after.queue());
    assert_eq!(before.state().locks, after.state().locks);
}

#[test]
fn a_refused_reminder_is_not_recorded_but_a_persons_refusal_is() {
    let (_, remind) = remind("PAY-1", Approval);
    assert!(!remind.records_refusal());
    for text in [
        "dobro PAY-1 https://wiki/x",
        "accept PAY-1",
        "reject PAY-1 no",
        "cancel PAY-1",
        "here PAY-1",
        "dep start PAY-1",
        "dep finish PAY-1",
        "dep rollback PAY-1 no",
        "freeze audit",
        "unfreeze",
    ] {
        assert!(cmd("dev", text).1.records_refusal(), "{text}");
    }
}

#[test]
fn no_chat_text_is_a_reminder() {
    for text in ["remind PAY-1 approval", "reminder PAY-1"] {
        assert!(
            matches!(parse(text), Err(ParseError::Unknown { .. })),
            "{text}"
        );
    }
}

// --- the queue -------------------------------------------------------------------------------

fn item<'q>(items: &'q [QueueItem], ticket: &str) -> &'q QueueItem {
    items
        .iter()
        .find(|i| i.ticket == t(ticket))
        .expect("the ticket is queued")
}

#[test]
fn the_queue_is_in_request_order_with_positions_per_service_and_conflict_group() {
    // api and billing share backend-core: they are one line.
    let items = Scenario::given([
        requested("PAY-1", "dev"),
        requested("API-1", "dev"),
        requested("PAY-2", "eve"),
        requested("WEB-1", "eve"),
        requested_on("MIX-1", "dev", &[s("web"), s("billing")], true),
    ])
    .queue();
    let order: Vec<(&str, usize)> = items
        .iter()
        .map(|i| (i.ticket.as_str(), i.position))
        .collect();
    assert_eq!(
        order,
        [
            ("PAY-1", 1),
            ("API-1", 2),
            ("PAY-2", 3),
            ("WEB-1", 1),
            ("MIX-1", 5)
        ]
    );
}

#[test]
fn the_queue_says_what_each_request_waits_for() {
    let [rp, ap, jp, sp] = deploying("PAY-1", "dev");
    let items = Scenario::given([
        rp,
        ap,
        jp,
        sp,
        requested("PAY-2", "eve"),
        requested_no_admin("PAY-3", "eve"),
        approved("PAY-3", "alice"),
        requested_no_admin("API-1", "dev"),
        approved("API-1", "bob"),
        requested_no_admin("WEB-1", "dev"),
        approved("WEB-1", "bob"),
        requested_no_admin("WEB-2", "dev"),
        approved("WEB-2", "bob"),
        frozen("alice", "web outage", Some(&["web"])),
    ])
    .queue();
    assert_eq!(item(&items, "PAY-1").status, ReleaseStatus::Deploying);
    assert_eq!(item(&items, "PAY-1").waiting_for, []);
    let billing_lock = |lock: LockKey| Waiting::Lock {
        lock,
        ticket: t("PAY-1"),
    };
    assert_eq!(
        item(&items, "PAY-2").waiting_for,
        [
            Waiting::Approval,
            Waiting::Admin,
            billing_lock(LockKey::Service(s("billing")))
        ]
    );
    assert_eq!(
        item(&items, "PAY-3").waiting_for,
        [billing_lock(LockKey::Service(s("billing")))]
    );
    // PAY-3 (billing) asked earlier, is ready, and shares backend-core with api.
    assert_eq!(
        item(&items, "API-1").waiting_for,
        [
            billing_lock(LockKey::Group(g("backend-core"))),
            Waiting::Turn {
                ahead: t("PAY-3"),
                over: LockKey::Group(g("backend-core"))
            }
        ]
    );
    assert_eq!(item(&items, "WEB-1").waiting_for, [Waiting::Freeze]);
    assert_eq!(
        item(&items, "WEB-2").waiting_for,
        [
            Waiting::Freeze,
            Waiting::Turn {
                ahead: t("WEB-1"),
                over: LockKey::Service(s("web"))
            }
        ]
    );
}

#[test]
fn the_queue_says_a_turn_over_a_conflict_group() {
    let [ra, aa, ja] = ready("API-1", "dev");
    let [r, a, j] = ready("PAY-1", "eve");
    let items = Scenario::given([ra, aa, ja, r, a, j]).queue();
    assert_eq!(item(&items, "API-1").waiting_for, []);
    assert_eq!(
        item(&items, "PAY-1").waiting_for,
        [Waiting::Turn {
            ahead: t("API-1"),
            over: LockKey::Group(g("backend-core"))
        }]
    );
    assert_eq!(item(&items, "PAY-1").position, 2);
}

#[test]
fn a_ready_request_waits_for_nothing() {
    let scenario = Scenario::given(ready("PAY-1", "dev"));
    let items = scenario.queue();
    let only = item(&items, "PAY-1");
    assert_eq!(only.status, ReleaseStatus::Accepted);
    assert_eq!(only.waiting_for, []);
    assert_eq!(only.approver, Some(u("alice")));
    assert_eq!(only.admin, Some(u("oleg")));
    assert!(only.need_admin);
    assert_eq!(only.position, 1);
}

#[test]
fn closed_requests_leave_the_queue() {
    let items = Scenario::given([
        requested("PAY-1", "dev"),
        requested("PAY-2", "dev"),
        cancelled("PAY-1", "dev"),
    ])
    .queue();
    let order: Vec<(&str, usize)> = items
        .iter()
        .map(|i| (i.ticket.as_str(), i.position))
        .collect();
    assert_eq!(order, [("PAY-2", 1)]);
}

// --- invariants over random command sequences ------------------------------------------------

mod invariants {
    use proptest::prelude::*;

    use super::*;

    const ACTORS: &[&str] = &["dev", "eve", "alice", "bob", "oleg"];
    const TICKETS: &[&str] = &["PAY-1", "PAY-2", "API-1", "API-2", "WEB-1", "OPS-1"];

    fn chat() -> impl Strategy<Value = (&'static str, String)> {
        let text = (0..16usize, prop::sample::select(TICKETS), any::<bool>()).prop_map(
            |(verb, ticket, flag)| match verb {
                0 | 1 => {
                    let extra = if flag { " no_need_admin" } else { "" };
                    format!("dobro {ticket} https://wiki/x{extra}")
                }
                2 => format!("dobro {ticket} https://wiki/x no_need_admin services=web,billing"),
                3 | 4 => format!("accept {ticket}"),
                5 => format!("here {ticket}"),
                6..=8 => format!("dep start {ticket}"),
                9 => format!("dep finish {ticket}"),
                10 => format!("dep rollback {ticket} broken"),
                11 if flag => format!("cancel {ticket}"),
                11 => format!("reject {ticket} no"),
                12 if flag => "freeze audit services=billing".to_string(),
                12 => "freeze audit".to_string(),
                13 => "unfreeze".to_string(),
                14 if flag => format!("dep takeover {ticket} --force stuck"),
                14 => format!("dep takeover {ticket} --force"),
                _ => format!("dep takeover {ticket} stuck"),
            },
        );
        (prop::sample::select(ACTORS), text)
    }

    /// Runs the commands, checking the invariants after each one.
    fn run(commands: Vec<(&'static str, String)>) -> Result<(), TestCaseError> {
        let mut scenario = Scenario::given([]);
        for (actor, text) in commands {
            let (actor, command) = cmd(actor, &text);
            match decide(
                &scenario.state,
                &actor,
                &command,
                &scenario.policy,
                scenario.now(),
            ) {
                Ok(events) => events.iter().for_each(|e| scenario.record(e)),
                Err(refusal) => scenario.record(&refused(&actor, &command, refusal)),
            }
            one_deployment_per_service_and_group(&scenario)?;
            the_queue_promises_only_what_start_allows(&scenario)?;
        }
        Ok(())
    }

    fn one_deployment_per_service_and_group(scenario: &Scenario) -> Result<(), TestCaseError> {
        let state = scenario.state();
        let mut held = BTreeMap::new();
        for release in state.in_order() {
            if release.status() != ReleaseStatus::Deploying {
                continue;
            }
            let keys = release
                .services
                .iter()
                .cloned()
                .map(LockKey::Service)
                .chain(
                    scenario
                        .policy
                        .groups_of(&release.services)
                        .into_iter()
                        .map(LockKey::Group),
                );
            for key in keys {
                prop_assert_eq!(
                    state.locks.get(&key).map(|h| &h.ticket),
                    Some(&release.ticket)
                );
                if let Some(other) = held.insert(key.clone(), release.ticket.clone()) {
                    prop_assert!(false, "{key:?} held by {other} and {}", release.ticket);
                }
            }
        }
        prop_assert_eq!(
            held.len(),
            state.locks.len(),
            "a lock outlived its deployment"
        );
        Ok(())
    }

    fn the_queue_promises_only_what_start_allows(scenario: &Scenario) -> Result<(), TestCaseError> {
        for item in scenario.queue() {
            if item.status == ReleaseStatus::Deploying {
                continue;
            }
            let start = Command::Start {
                ticket: item.ticket.clone(),
            };
            let allowed = decide(
                &scenario.state,
                &item.requester,
                &start,
                &scenario.policy,
                scenario.now(),
            );
            prop_assert_eq!(
                allowed.is_ok(),
                item.waiting_for.is_empty(),
                "{} waits for {:?}",
                item.ticket,
                item.waiting_for
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn invariants_hold_over_random_commands(
            commands in prop::collection::vec(chat(), 1..80)
        ) {
            run(commands)?;
        }
    }
}

#[test]
fn a_deployment_s_runner_says_it_is_alive_while_it_deploys() {
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("dev", "dep alive PAY-1 within=6m"))
        .then([alive("PAY-1", "dev", 360)])
        .when(cmd("oleg", "dep alive PAY-1"))
        .then([alive("PAY-1", "oleg", 600)]);
    Scenario::given(deploying("PAY-1", "dev"))
        .when(cmd("eve", "dep alive PAY-1"))
        .then_refused(Refusal::NotAllowed {
            role: Role::RequesterOrAdmin,
        });
    Scenario::given(ready("PAY-1", "dev"))
        .when(cmd("dev", "dep alive PAY-1"))
        .then_refused(Refusal::NotDeploying { ticket: t("PAY-1") });
    Scenario::given([])
        .when(cmd("dev", "dep alive PAY-1"))
        .then_refused(Refusal::NoOpenRequest { ticket: t("PAY-1") });
}

#[test]
fn a_sign_of_life_is_kept_until_the_next_and_a_new_start_forgets_it() {
    let mut given = deploying("PAY-1", "dev").to_vec();
    given.push(alive("PAY-1", "dev", 60));
    let scenario = Scenario::given(given.clone());
    let stage = &scenario.state().release(&t("PAY-1")).unwrap().stage;
    let super::state::Stage::Deploying {
        alive: Some(seen), ..
    } = stage
    else {
        panic!("deploying with a sign of life: {stage:?}");
    };
    assert_eq!((seen.at, seen.within_secs), (at(4), 60));
    assert_eq!(seen.due(), at(4) + Duration::seconds(60));
    given.push(finished("PAY-1", "dev"));
    assert!(
        Scenario::given(given)
            .state()
            .release(&t("PAY-1"))
            .is_none()
    );
}
