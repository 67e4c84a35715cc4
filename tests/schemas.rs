//! Every event the code emits matches its schema in `schemas/`, and comes back from its JSON
//! unchanged.
//!
//! Three sources of events: a hand-made instance of every variant (with every refusal, every
//! failed check, both lock kinds, a freeze with and without services, every reminder kind), a
//! walk through the rules with real chat commands and the system's reminders, and random
//! command sequences. Exhaustive `match`es make a new
//! variant fail to compile here until it has a sample.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

mod support;

use dobrobot::domain::reminders::{QuietHours, system_actor};
use dobrobot::domain::tracker::{NotCheckedCause, TicketInTracker, TrackerCheck};
use dobrobot::domain::{
    CheckFailure, Command, Event, GroupName, Input, LockKey, Policy, PolicyCause, Reason, Refusal,
    ReleaseStatus, ReminderKind, ReminderSettings, Role, RoleEntry, ServiceName, State, TicketKey,
    UserGroupId, UserId, WikiLink, decide, parse, refused,
};
use dobrobot::envelope::{self, Actor, Context, GENESIS_HASH, Source};
use dobrobot::schemas::{self, METADATA, validate_event, validate_metadata};

fn t(text: &str) -> TicketKey {
    TicketKey::parse(text).unwrap()
}

fn u(text: &str) -> UserId {
    UserId::parse(text).unwrap()
}

fn g(text: &str) -> GroupName {
    GroupName::parse(text).unwrap()
}

fn s(text: &str) -> ServiceName {
    ServiceName::parse(text).unwrap()
}

fn r(text: &str) -> Reason {
    Reason::parse(text).unwrap()
}

fn at(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 10, 0, 0).unwrap() + Duration::milliseconds(60_001 * n)
}

/// Validates the data of `event` as serde writes it, and reads it back.
#[track_caller]
fn check(event: &Event) {
    let value = serde_json::to_value(event).unwrap();
    let event_type = value["type"].as_str().expect("a type tag");
    assert_eq!(event_type, event.type_name());
    let data = &value["data"];
    if let Err(error) = validate_event(event_type, data) {
        panic!("{error}\n{data:#}");
    }
    let back: Event = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(&back, event);
}

// --- every variant ---------------------------------------------------------------------------

fn event_index(event: &Event) -> usize {
    match event {
        Event::ReleaseRequested { .. } => 0,
        Event::ReleaseApproved { .. } => 1,
        Event::ReleaseRejected { .. } => 2,
        Event::ReleaseCancelled { .. } => 3,
        Event::AdminJoined { .. } => 4,
        Event::DeploymentStarted { .. } => 5,
        Event::DeploymentFinished { .. } => 6,
        Event::DeploymentRolledBack { .. } => 7,
        Event::FreezeStarted { .. } => 8,
        Event::FreezeEnded { .. } => 9,
        Event::CommandRefused { .. } => 10,
        Event::ReminderSent { .. } => 11,
        Event::DeploymentAlive { .. } => 12,
        Event::DeploymentAbandoned { .. } => 13,
        Event::TakeoverProposed { .. } => 14,
        Event::PolicyChanged { .. } => 15,
    }
}

/// The refusals a `CommandRefused` may hold: all but a reminder's, which is never recorded.
const REFUSAL_VARIANTS: usize = 21;

fn refusal_index(refusal: &Refusal) -> usize {
    match refusal {
        Refusal::ChecksFailed { .. } => 0,
        Refusal::AlreadyOpen { .. } => 1,
        Refusal::NoOpenRequest { .. } => 2,
        Refusal::NotAllowed { .. } => 3,
        Refusal::OwnRelease { .. } => 4,
        Refusal::AlreadyAccepted { .. } => 5,
        Refusal::AdminNotNeeded { .. } => 6,
        Refusal::AdminAlreadyJoined { .. } => 7,
        Refusal::NotAccepted { .. } => 8,
        Refusal::AdminRequired { .. } => 9,
        Refusal::Frozen { .. } => 10,
        Refusal::LockHeld { .. } => 11,
        Refusal::NotYourTurn { .. } => 12,
        Refusal::AlreadyDeploying { .. } => 13,
        Refusal::NotDeploying { .. } => 14,
        Refusal::AlreadyFrozen { .. } => 15,
        Refusal::NotFrozen => 16,
        Refusal::TakeoverTooSoon { .. } => 17,
        Refusal::NoTakeoverProposed { .. } => 18,
        Refusal::TakeoverAlreadyProposed { .. } => 19,
        Refusal::TakeoverNeedsSecond { .. } => 20,
        Refusal::ReminderOutOfStage { .. } | Refusal::AlreadyReminded { .. } => {
            panic!("a reminder's refusal is never recorded: {refusal:?}")
        }
    }
}

/// The refusals of `Command::Remind`, which the ledger does not record.
fn unrecorded_refusals() -> Vec<Refusal> {
    vec![
        Refusal::ReminderOutOfStage {
            ticket: t("PAY-1"),
            reminder: ReminderKind::Approval,
            status: ReleaseStatus::Accepted,
        },
        Refusal::AlreadyReminded {
            ticket: t("PAY-1"),
            reminder: ReminderKind::StaleLock,
        },
    ]
}

fn check_index(failure: &CheckFailure) -> usize {
    match failure {
        CheckFailure::TicketPattern { .. } => 0,
        CheckFailure::WikiLinkMissing => 1,
        CheckFailure::NoServices { .. } => 2,
        CheckFailure::TicketNotFound => 3,
        CheckFailure::StatusNotAllowed { .. } => 4,
        CheckFailure::NoFixVersion => 5,
        CheckFailure::NoAssignee => 6,
        CheckFailure::IssueTypeNotAllowed { .. } => 7,
        CheckFailure::LabelMissing { .. } => 8,
        CheckFailure::TrackerUnavailable { .. } => 9,
        CheckFailure::TrackerMisconfigured { .. } => 10,
    }
}

/// How many `CheckFailure` variants `check_index` knows.
const CHECK_VARIANTS: usize = 11;

fn every_refusal() -> Vec<Refusal> {
    let ticket = t("PAY-1");
    vec![
        Refusal::ChecksFailed {
            ticket: t("X_Y-7"),
            failures: vec![
                CheckFailure::TicketPattern {
                    pattern: "^[A-Z][A-Z0-9]+-[0-9]+$".to_string(),
                },
                CheckFailure::WikiLinkMissing,
                CheckFailure::NoServices {
                    project: "X_Y".to_string(),
                },
                CheckFailure::StatusNotAllowed {
                    status: "В работе".to_string(),
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
        },
        Refusal::ChecksFailed {
            ticket: t("PAY-3"),
            failures: vec![CheckFailure::TicketNotFound],
        },
        Refusal::ChecksFailed {
            ticket: t("PAY-4"),
            failures: vec![CheckFailure::TrackerUnavailable {
                reason: "no answer within 3s".to_string(),
            }],
        },
        Refusal::ChecksFailed {
            ticket: t("PAY-5"),
            failures: vec![CheckFailure::TrackerMisconfigured {
                reason: "HTTP 401".to_string(),
            }],
        },
        Refusal::ChecksFailed {
            ticket: ticket.clone(),
            failures: vec![CheckFailure::WikiLinkMissing],
        },
        Refusal::AlreadyOpen {
            ticket: ticket.clone(),
            status: ReleaseStatus::Requested,
        },
        Refusal::AlreadyOpen {
            ticket: ticket.clone(),
            status: ReleaseStatus::Accepted,
        },
        Refusal::AlreadyOpen {
            ticket: ticket.clone(),
            status: ReleaseStatus::Deploying,
        },
        Refusal::NoOpenRequest {
            ticket: ticket.clone(),
        },
        Refusal::NotAllowed {
            role: Role::Approver,
        },
        Refusal::NotAllowed { role: Role::Admin },
        Refusal::NotAllowed {
            role: Role::RequesterOrAdmin,
        },
        Refusal::NotAllowed {
            role: Role::RequesterOrApprover,
        },
        Refusal::OwnRelease {
            ticket: ticket.clone(),
        },
        Refusal::AlreadyAccepted {
            ticket: ticket.clone(),
            approver: u("alice"),
        },
        Refusal::AdminNotNeeded {
            ticket: ticket.clone(),
        },
        Refusal::AdminAlreadyJoined {
            ticket: ticket.clone(),
            admin: u("oleg"),
        },
        Refusal::NotAccepted {
            ticket: ticket.clone(),
        },
        Refusal::AdminRequired {
            ticket: ticket.clone(),
        },
        Refusal::Frozen {
            by: u("bob"),
            since: at(1),
            reason: r("black friday"),
            services: None,
        },
        Refusal::Frozen {
            by: u("bob"),
            since: at(2),
            reason: r("db migration"),
            services: Some(vec![s("billing"), s("api")]),
        },
        Refusal::LockHeld {
            lock: LockKey::Service(s("billing")),
            ticket: t("PAY-2"),
            by: u("dev"),
            since: at(3),
        },
        Refusal::LockHeld {
            lock: LockKey::Group(g("backend-core")),
            ticket: t("API-1"),
            by: u("U01ABC"),
            since: at(4),
        },
        Refusal::NotYourTurn {
            ticket: t("PAY-2"),
            ahead: ticket.clone(),
            over: LockKey::Service(s("billing")),
        },
        Refusal::NotYourTurn {
            ticket: t("PAY-2"),
            ahead: t("API-1"),
            over: LockKey::Group(g("backend-core")),
        },
        Refusal::AlreadyDeploying {
            ticket: ticket.clone(),
        },
        Refusal::NotDeploying {
            ticket: ticket.clone(),
        },
        Refusal::AlreadyFrozen {
            by: u("alice"),
            since: at(5),
        },
        Refusal::NotFrozen,
        Refusal::TakeoverTooSoon {
            ticket: ticket.clone(),
            since: at(3),
            after_secs: 1800,
        },
        Refusal::NoTakeoverProposed {
            ticket: ticket.clone(),
        },
        Refusal::TakeoverAlreadyProposed {
            ticket: ticket.clone(),
            by: u("oleg"),
        },
        Refusal::TakeoverNeedsSecond {
            ticket: ticket.clone(),
            proposed_by: u("alice"),
            role: Role::Admin,
        },
        Refusal::NotAllowed {
            role: Role::AdminOrApprover,
        },
    ]
}

fn every_event() -> Vec<Event> {
    let ticket = t("PAY-1");
    let mut events = vec![
        Event::ReleaseRequested {
            ticket: ticket.clone(),
            requester: u("dev"),
            services: vec![s("billing")],
            wiki: Some(WikiLink::parse("https://wiki.example.com/x?a=1&b=2").unwrap()),
            comment: "fix & ship <today>".to_string(),
            need_admin: true,
            tracker: None,
        },
        Event::ReleaseRequested {
            ticket: t("PAY-9"),
            requester: u("dev"),
            services: vec![s("billing")],
            wiki: None,
            comment: String::new(),
            need_admin: true,
            tracker: Some(TicketInTracker::Checked {
                summary: "Invoices round to the cent \"exactly\"".to_string(),
                status: "Ready for release".to_string(),
                checks: vec![
                    TrackerCheck::Exists,
                    TrackerCheck::Status,
                    TrackerCheck::FixVersion,
                    TrackerCheck::Assignee,
                    TrackerCheck::IssueType,
                    TrackerCheck::Label,
                ],
            }),
        },
        Event::ReleaseRequested {
            ticket: t("PAY-10"),
            requester: u("dev"),
            services: vec![s("billing")],
            wiki: None,
            comment: String::new(),
            need_admin: false,
            tracker: Some(TicketInTracker::NotChecked {
                cause: NotCheckedCause::Misconfigured,
                reason: "HTTP 403: no permission".to_string(),
                checks: vec![TrackerCheck::Exists],
            }),
        },
        Event::ReleaseRequested {
            ticket: t("PAY-11"),
            requester: u("dev"),
            services: vec![s("billing")],
            wiki: None,
            comment: String::new(),
            need_admin: false,
            tracker: Some(TicketInTracker::NotChecked {
                cause: NotCheckedCause::Unavailable,
                reason: "no answer within 3s".to_string(),
                checks: vec![TrackerCheck::Exists, TrackerCheck::Status],
            }),
        },
        Event::ReleaseRequested {
            ticket: t("OPS_2-17"),
            requester: u("Ольга"),
            services: vec![s("web"), s("api.v2")],
            wiki: None,
            comment: String::new(),
            need_admin: false,
            tracker: None,
        },
        Event::ReleaseApproved {
            ticket: ticket.clone(),
            approver: u("alice"),
        },
        Event::ReleaseRejected {
            ticket: ticket.clone(),
            approver: u("bob"),
            reason: r("the notes are empty"),
        },
        Event::ReleaseCancelled {
            ticket: ticket.clone(),
            by: u("dev"),
        },
        Event::AdminJoined {
            ticket: ticket.clone(),
            admin: u("oleg"),
        },
        Event::DeploymentStarted {
            ticket: ticket.clone(),
            by: u("dev"),
            services: vec![s("billing")],
            conflict_groups: vec![g("backend-core")],
        },
        Event::DeploymentStarted {
            ticket: t("WEB-1"),
            by: u("oleg"),
            services: vec![s("web")],
            conflict_groups: vec![],
        },
        Event::DeploymentFinished {
            ticket: ticket.clone(),
            by: u("dev"),
        },
        Event::DeploymentRolledBack {
            ticket: ticket.clone(),
            by: u("oleg"),
            reason: r("error rate up"),
        },
        Event::FreezeStarted {
            by: u("alice"),
            reason: r("black friday"),
            services: None,
        },
        Event::FreezeStarted {
            by: u("alice"),
            reason: r("db migration"),
            services: Some(vec![s("billing"), s("api")]),
        },
        Event::FreezeEnded { by: u("bob") },
        Event::DeploymentAlive {
            ticket: ticket.clone(),
            by: u("ci-deployer"),
            within_secs: 360,
        },
        Event::DeploymentAbandoned {
            ticket: ticket.clone(),
            by: u("oleg"),
            reason: r("runner gone"),
            proposed_by: None,
        },
        Event::DeploymentAbandoned {
            ticket: ticket.clone(),
            by: u("U01ABC"),
            reason: r("runner OOM-killed"),
            proposed_by: Some(u("alice")),
        },
        Event::TakeoverProposed {
            ticket: ticket.clone(),
            by: u("alice"),
            reason: r("runner OOM-killed"),
            second: Role::Admin,
        },
        Event::TakeoverProposed {
            ticket: ticket.clone(),
            by: u("oleg"),
            reason: r("stuck"),
            second: Role::AdminOrApprover,
        },
        Event::PolicyChanged {
            policy: Box::new(Policy::default()),
            changes: vec!["the first recorded policy".to_string()],
            cause: PolicyCause::Start,
            config_hash: None,
            host: "build-01".to_string(),
            process: 1,
            by: system_actor(),
        },
        Event::PolicyChanged {
            policy: Box::new(every_rule()),
            changes: vec![
                "approvers: added bob".to_string(),
                "conflict group backend-core added: api, billing".to_string(),
            ],
            cause: PolicyCause::Reload,
            config_hash: Some("ab".repeat(32)),
            host: "bot-2.prod".to_string(),
            process: 4242,
            by: system_actor(),
        },
    ];
    for kind in ReminderKind::ALL {
        events.push(Event::ReminderSent {
            ticket: ticket.clone(),
            kind,
            by: system_actor(),
        });
    }
    for (i, refusal) in every_refusal().into_iter().enumerate() {
        let ticket = refusal_ticket(&refusal);
        let command = ["dobro", "accept", "dep start", "freeze", "unfreeze"][i % 5];
        events.push(Event::CommandRefused {
            by: u("eve"),
            command: command.to_string(),
            ticket: if i % 3 == 0 { None } else { ticket },
            refusal,
        });
    }
    events
}

/// A policy that sets every rule: user groups with members, a tracker, quiet hours, backups.
fn every_rule() -> Policy {
    let group = UserGroupId::parse("S0APPROVERS").unwrap();
    let roles = dobrobot::domain::policy::Roles {
        approvers: vec![RoleEntry::User(u("alice")), RoleEntry::Group(group.clone())],
        admins: vec![RoleEntry::User(u("oleg"))],
    };
    let policy = Policy {
        roles,
        four_eyes: false,
        tracker: Some(dobrobot::domain::TrackerRules {
            statuses: vec!["Ready for release".to_string()],
            status_categories: vec!["done".to_string()],
            require_fix_version: true,
            require_assignee: true,
            issue_types: vec!["Story".to_string()],
            labels: vec!["release".to_string()],
            on_unavailable: dobrobot::domain::tracker::OnUnavailable::Allow,
        }),
        reminders: ReminderSettings {
            quiet_hours: Some(QuietHours::parse("22:00-08:00").unwrap()),
            backup_approvers: vec![RoleEntry::Group(group.clone())],
            ..ReminderSettings::default()
        },
        ..policy()
    };
    policy.with_members(&[(group, [u("bob"), u("carol")].into())].into())
}

fn refusal_ticket(refusal: &Refusal) -> Option<TicketKey> {
    let value = serde_json::to_value(refusal).unwrap();
    value["ticket"].as_str().map(t)
}

#[test]
fn every_variant_matches_its_schema_and_round_trips() {
    let events = every_event();
    let mut kinds = BTreeSet::new();
    let mut refusals = BTreeSet::new();
    let mut checks = BTreeSet::new();
    let mut locks = BTreeSet::new();
    let mut freezes = BTreeSet::new();
    let mut reminders = BTreeSet::new();
    for event in &events {
        check(event);
        kinds.insert(event_index(event));
        match event {
            Event::CommandRefused { refusal, .. } => {
                refusals.insert(refusal_index(refusal));
                match refusal {
                    Refusal::ChecksFailed { failures, .. } => {
                        checks.extend(failures.iter().map(check_index));
                    }
                    Refusal::LockHeld { lock, .. } => {
                        locks.insert(matches!(lock, LockKey::Group(_)));
                    }
                    Refusal::Frozen { services, .. } => {
                        freezes.insert(services.is_some());
                    }
                    _ => {}
                }
            }
            Event::FreezeStarted { services, .. } => {
                freezes.insert(services.is_some());
            }
            Event::ReminderSent { kind, .. } => {
                reminders.insert(*kind);
            }
            _ => {}
        }
    }
    assert_eq!(
        reminders.len(),
        ReminderKind::ALL.len(),
        "a reminder kind has no sample"
    );
    assert_eq!(
        kinds.len(),
        Event::TYPES.len(),
        "an event type has no sample"
    );
    assert_eq!(refusals.len(), REFUSAL_VARIANTS, "a refusal has no sample");
    assert_eq!(checks.len(), CHECK_VARIANTS, "a failed check has no sample");
    assert_eq!(locks.len(), 2, "a lock kind has no sample");
    assert_eq!(freezes.len(), 2, "a freeze scope has no sample");
}

#[test]
fn a_reminders_refusal_is_not_recorded_and_the_schema_has_no_room_for_it() {
    for refusal in unrecorded_refusals() {
        let command = Command::Remind {
            ticket: t("PAY-1"),
            kind: ReminderKind::Approval,
        };
        assert!(!command.records_refusal());
        // Were one recorded by mistake, `verify` would flag it.
        let event = refused(&system_actor(), &command, refusal);
        let value = serde_json::to_value(&event).unwrap();
        assert!(
            validate_event("CommandRefused", &value["data"]).is_err(),
            "{value}"
        );
    }
}

#[test]
fn the_stored_form_matches_too() {
    for event in every_event() {
        let bytes = envelope::encode_data(&event);
        let data: Value = serde_json::from_slice(&bytes).unwrap();
        validate_event(event.type_name(), &data).unwrap();
        assert_eq!(
            envelope::decode_event(event.type_name(), &bytes).unwrap(),
            event
        );
    }
}

#[test]
fn sealed_metadata_matches_its_schema() {
    let mut prev = GENESIS_HASH.to_string();
    for (i, event) in every_event().iter().enumerate() {
        let context = Context {
            actor: Actor {
                id: u("U01ABC"),
                name: "Oleg Petrov".to_string(),
                source: [Source::Slack, Source::Cli, Source::Http, Source::System][i % 4],
            },
            correlation_id: Uuid::now_v7(),
            causation_id: (i % 2 == 0).then(Uuid::now_v7),
            command: "<@U123> dep start PAY-1".to_string(),
            recorded_at: at(i as i64),
        };
        let (stored, hash) = envelope::seal(event, Uuid::now_v7(), &context, &prev);
        let metadata: Value = serde_json::from_slice(&stored.metadata).unwrap();
        if let Err(error) = validate_metadata(&metadata) {
            panic!("{error}\n{metadata:#}");
        }
        prev = hash;
    }
}

#[test]
fn wrong_data_is_refused_with_its_path() {
    let error = validate_event(
        "DeploymentStarted",
        &json!({"ticket": "PAY-1", "by": "dev", "services": ["billing", 7],
                "conflict_groups": []}),
    )
    .unwrap_err();
    match error {
        schemas::SchemaError::Invalid { schema, path, .. } => {
            assert_eq!(schema, "DeploymentStarted");
            assert_eq!(path, "/services/1");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_turn_refusal_recorded_before_turns_spanned_conflict_groups_still_matches_and_decodes() {
    let old = json!({"by": "eve", "command": "dep start", "ticket": "PAY-2",
                     "refusal": {"kind": "not_your_turn", "ticket": "PAY-2", "ahead": "PAY-1",
                                 "service": "billing"}});
    validate_event("CommandRefused", &old).unwrap();
    let bytes = serde_json::to_vec(&old).unwrap();
    assert_eq!(
        envelope::decode_event("CommandRefused", &bytes).unwrap(),
        Event::CommandRefused {
            by: u("eve"),
            command: "dep start".to_string(),
            ticket: Some(t("PAY-2")),
            refusal: Refusal::NotYourTurn {
                ticket: t("PAY-2"),
                ahead: t("PAY-1"),
                over: LockKey::Service(s("billing")),
            },
        }
    );
    // One or the other, not both nor neither.
    let mut both = old.clone();
    both["refusal"]["over"] = json!({"kind": "service", "name": "billing"});
    assert!(validate_event("CommandRefused", &both).is_err());
    let mut neither = old;
    neither["refusal"]
        .as_object_mut()
        .unwrap()
        .remove("service");
    assert!(validate_event("CommandRefused", &neither).is_err());
}

// --- one schema file per type ----------------------------------------------------------------

#[test]
fn every_type_has_a_schema_file_and_every_file_a_type() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = Event::TYPES
        .iter()
        .chain([&METADATA])
        .map(|name| format!("{name}.json"))
        .collect();
    assert_eq!(files, expected);
    for (name, text) in schemas::FILES {
        let on_disk = std::fs::read_to_string(format!("{dir}/{name}.json")).unwrap();
        assert_eq!(on_disk, text, "{name}");
        let schema: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
    }
    for event_type in Event::TYPES {
        assert!(
            !matches!(
                validate_event(event_type, &json!({})),
                Err(schemas::SchemaError::UnknownType(_))
            ),
            "{event_type}"
        );
    }
}

// --- events from the rules -------------------------------------------------------------------

/// The shared policy, with bob approving too and WEB deploying web.
fn policy() -> Policy {
    let mut policy = support::fixtures::policy();
    policy.approvers.insert(u("bob"));
    policy
        .services_by_project
        .insert("WEB".to_string(), vec![s("web")]);
    policy
}

/// Runs chat commands (and system reminders) through `decide`, records what comes out as the
/// ledger would, and returns every event.
fn run(commands: &[(&str, impl AsRef<str>)]) -> Vec<Event> {
    let policy = policy();
    let mut state = State::default();
    let mut emitted = Vec::new();
    for (actor, text) in commands {
        let system = support::fixtures::system_command(text.as_ref(), &policy);
        let (actor, command) = match (system, parse(text.as_ref())) {
            (Some(system), _) => system,
            (None, Ok(Input::Command(command))) => (u(actor), command),
            (None, _) => continue,
        };
        let events = match decide(&state, &actor, &command, &policy, at(emitted.len() as i64)) {
            Ok(events) => events,
            Err(_) if !command.records_refusal() => Vec::new(),
            Err(refusal) => vec![refused(&actor, &command, refusal)],
        };
        for event in events {
            state.evolve(&event, at(emitted.len() as i64));
            emitted.push(event);
        }
    }
    emitted
}

#[test]
fn events_from_a_walk_through_the_rules_match_their_schemas() {
    let script = [
        ("system", "policy"),
        ("dev", "dobro #PAY-1 [Notes](https://wiki/x) fix & ship"),
        ("system", "remind approval PAY-1"),
        ("system", "remind escalation PAY-1"),
        ("system", "remind approval PAY-1"),
        ("dev", "dobro PAY-1 https://wiki/x again"),
        ("eve", "dobro X_Y-7 no notes"),
        (
            "eve",
            "dobro OPS-1 https://wiki/x no_need_admin services=web,api",
        ),
        ("dev", "accept PAY-1"),
        ("alice", "accept PAY-1"),
        ("bob", "accept PAY-1"),
        ("dev", "dep start PAY-1"),
        ("alice", "here PAY-1"),
        ("oleg", "here PAY-1"),
        ("oleg", "here PAY-1"),
        ("oleg", "here OPS-1"),
        ("bob", "freeze db migration services=billing"),
        ("bob", "freeze again"),
        ("dev", "dep start PAY-1"),
        ("alice", "unfreeze"),
        ("alice", "unfreeze"),
        ("eve", "dep start PAY-1"),
        ("dev", "dep start PAY-1"),
        ("dev", "dep start PAY-1"),
        ("dev", "dep alive PAY-1 within=6m"),
        ("system", "remind overdue_deployment PAY-1"),
        ("system", "remind stale_lock PAY-1"),
        ("system", "remind approval PAY-1"),
        ("dev", "cancel PAY-1"),
        ("bob", "accept OPS-1"),
        ("eve", "dep start OPS-1"),
        ("dev", "dobro API-1 https://wiki/x no_need_admin"),
        ("dev", "dobro API-2 https://wiki/x no_need_admin"),
        ("alice", "accept API-1"),
        ("alice", "accept API-2"),
        ("dev", "dep finish PAY-1"),
        ("eve", "dep start OPS-1"),
        ("dev", "dep start API-1"),
        ("eve", "dep rollback OPS-1 error rate up"),
        ("dev", "dep start API-2"),
        ("dev", "dep start API-1"),
        ("eve", "dep takeover API-1 --force stuck"),
        ("alice", "dep takeover API-1 --force"),
        ("oleg", "dep takeover API-1 gone"),
        ("alice", "dep takeover API-1 --force runner gone"),
        ("alice", "dep takeover API-1 --force"),
        ("bob", "dep takeover API-1 --force"),
        ("oleg", "dep takeover API-1 --force"),
        ("dev", "dep finish API-1"),
        ("eve", "dep finish OPS-1"),
        ("alice", "reject API-2 not this week"),
        ("alice", "reject API-9 what"),
        ("dev", "dep finish API-2"),
        ("alice", "freeze everything"),
        ("dev", "dobro API-2 https://wiki/x"),
        ("alice", "accept API-2"),
        ("eve", "cancel API-2"),
        ("alice", "cancel API-2"),
    ];
    let events = run(&script);
    let mut refusals = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for event in &events {
        check(event);
        kinds.insert(event_index(event));
        if let Event::CommandRefused { refusal, .. } = event {
            refusals.insert(refusal_index(refusal));
        }
    }
    assert_eq!(kinds.len(), Event::TYPES.len(), "{events:#?}");
    assert!(refusals.len() >= 14, "{refusals:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn events_from_random_commands_match_their_schemas(
        commands in prop::collection::vec(support::fixtures::chat(), 1..60)
    ) {
        for event in run(&commands) {
            let value = serde_json::to_value(&event).unwrap();
            let result = validate_event(event.type_name(), &value["data"]);
            prop_assert!(result.is_ok(), "{:?}\n{:#}", result, value);
            let back: Event = serde_json::from_value(value).unwrap();
            prop_assert_eq!(back, event);
        }
    }
}
