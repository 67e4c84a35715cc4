//! Deciding recorded commands again (`domain::replay`): the ledger is its own oracle (every
//! decision, decided again by the policy recorded then, gives the events recorded), what-if with
//! the same policy reports nothing, and a hand-made ledger under changed rules gives exactly the
//! differences worked out by hand.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

mod support;

use dobrobot::domain::replay::{Difference, Step, StepKind, check, what_if};
use dobrobot::domain::{
    Command, ConflictGroup, Event, GroupName, Input, LockKey, Policy, Refusal, Role, State, decide,
    parse, refused,
};
use support::fixtures::{s, t, u};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

/// The policy of the walk: alice and bob approve, oleg is the admin; PAY deploys billing, API
/// api, WEB web; no conflict group.
fn old_rules() -> Policy {
    let mut policy = support::fixtures::policy();
    policy.approvers.insert(u("bob"));
    policy.conflict_groups.clear();
    policy
        .services_by_project
        .insert("WEB".to_string(), vec![s("web")]);
    policy
}

/// The proposal: bob no longer approves, carol does, and api and billing form the group core.
fn new_rules() -> Policy {
    let mut policy = old_rules();
    policy.approvers.remove(&u("bob"));
    policy.approvers.insert(u("carol"));
    policy.conflict_groups.push(ConflictGroup {
        name: GroupName::parse("core").unwrap(),
        services: [s("api"), s("billing")].into(),
    });
    policy
}

/// A ledger as the writer records it, in memory: each command decided by the policy recorded
/// before it, a minute apart; `policy` as the script's system line records it.
fn record(script: &[(&str, String)], policy: &Policy) -> Vec<Step> {
    let mut state = State::default();
    let mut steps = Vec::new();
    for (n, (who, text)) in script.iter().enumerate() {
        let (actor, command) = match (support::fixtures::system_command(text, policy), parse(text))
        {
            (Some(system), _) => system,
            (None, Ok(Input::Command(command))) => (u(who), command),
            (None, _) => continue,
        };
        let deciding = state
            .policy
            .clone()
            .unwrap_or_else(|| policy.clone().into());
        let when = at(n as i64);
        let events = match decide(&state, &actor, &command, &deciding, when) {
            Ok(events) => events,
            Err(_) if !command.records_refusal() => Vec::new(),
            Err(refusal) => vec![refused(&actor, &command, refusal)],
        };
        if events.is_empty() {
            continue;
        }
        for event in &events {
            state.evolve(event, when);
        }
        let kind = match command {
            Command::AdoptPolicy(_) => StepKind::Policy,
            command => StepKind::Command { actor, command },
        };
        steps.push(Step {
            revision: n as u64,
            at: when,
            kind,
            recorded: events,
        });
    }
    steps
}

fn script(lines: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    lines
        .iter()
        .map(|(who, text)| {
            let who: &'static str = Box::leak(who.to_string().into_boxed_str());
            (who, text.to_string())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The ledger is its own oracle: every recorded decision, decided again against the state
    /// before it by the policy recorded then, gives exactly the events recorded.
    #[test]
    fn a_replay_under_the_recorded_policy_reproduces_every_decision(
        commands in prop::collection::vec(support::fixtures::chat(), 1..80)
    ) {
        let mut script = vec![("system", "policy".to_string())];
        script.extend(commands);
        let steps = record(&script, &old_rules());
        let (decided, mismatches) = check(State::default(), &steps);
        prop_assert!(mismatches.is_empty(), "{:#?}", mismatches);
        prop_assert_eq!(decided, steps.len() - 1, "every command but the policy");
    }

    /// What-if under the policy the ledger was recorded by: no difference.
    #[test]
    fn what_if_with_the_same_policy_reports_nothing(
        commands in prop::collection::vec(support::fixtures::chat(), 1..80)
    ) {
        let mut script = vec![("system", "policy".to_string())];
        script.extend(commands);
        let steps = record(&script, &old_rules());
        prop_assert_eq!(what_if(State::default(), &steps, &old_rules()), vec![]);
    }
}

/// A mismatch is found: the same ledger checked against other recorded rules.
#[test]
fn a_decision_the_recorded_rules_would_not_give_is_a_mismatch() {
    let lines = script(&[
        ("system", "policy"),
        ("dev", "dobro PAY-1 https://wiki/x notes no_need_admin"),
        ("bob", "accept PAY-1"),
    ]);
    let mut steps = record(&lines, &old_rules());
    // As if the ledger had recorded the new rules (without bob) before bob's approval.
    let Event::PolicyChanged { policy, .. } = &mut steps[0].recorded[0] else {
        panic!("the first step records the policy: {:?}", steps[0]);
    };
    **policy = new_rules();
    let (decided, mismatches) = check(State::default(), &steps);
    assert_eq!(decided, 2);
    assert_eq!(mismatches.len(), 1, "{mismatches:#?}");
    assert_eq!(mismatches[0].revision, 2);
    assert!(matches!(
        mismatches[0].replayed[..],
        [Event::CommandRefused {
            refusal: Refusal::NotAllowed {
                role: Role::Approver
            },
            ..
        }]
    ));
}

/// A hand-made ledger and a change of the rules: the differences, worked out by hand.
#[test]
fn what_if_reports_the_differences_of_a_hand_made_ledger_exactly() {
    let lines = script(&[
        ("system", "policy"),                                         // 0
        ("dev", "dobro PAY-1 https://wiki/x rounding no_need_admin"), // 1
        ("alice", "accept PAY-1"),                                    // 2
        ("dev", "dobro API-1 https://wiki/y endpoint no_need_admin"), // 3
        ("alice", "accept API-1"),                                    // 4
        ("dev", "dep start PAY-1"),                                   // 5
        ("dev", "dep start API-1"),                                   // 6: together, no group
        ("dev", "dep finish PAY-1"),                                  // 7
        ("dev", "dep finish API-1"),                                  // 8
        ("erin", "dobro WEB-1 https://wiki/z banner no_need_admin"),  // 9
        ("bob", "accept WEB-1"),                                      // 10: bob approves
        ("erin", "dep start WEB-1"),                                  // 11
        ("erin", "dep finish WEB-1"),                                 // 12
        ("dev", "dobro PAY-2 https://wiki/x again no_need_admin"),    // 13
        ("carol", "accept PAY-2"),                                    // 14: refused then
        ("alice", "accept PAY-2"),                                    // 15
    ]);
    let steps = record(&lines, &old_rules());
    assert_eq!(steps.len(), 16, "every line recorded something");

    let differences = what_if(State::default(), &steps, &new_rules());

    let expected = vec![
        // Under core, API-1 could not start while PAY-1 deployed.
        Difference::KeptApart {
            ticket: t("API-1"),
            other: t("PAY-1"),
            group: GroupName::parse("core").unwrap(),
            at: at(6),
        },
        // It starts when PAY-1 finishes, a minute later; its finish moves with it.
        Difference::StartMoved {
            ticket: t("API-1"),
            services: vec![s("api")],
            started_at: at(6),
            would_start_at: at(7),
            by_secs: 60,
            waited_for: Some(Refusal::LockHeld {
                lock: LockKey::Group(GroupName::parse("core").unwrap()),
                ticket: t("PAY-1"),
                by: u("dev"),
                since: at(5),
            }),
            request_order: 2,
        },
        // bob's approval does not count, so WEB-1 never starts.
        Difference::ApprovalNotCounted {
            ticket: t("WEB-1"),
            approver: u("bob"),
            at: at(10),
            refusal: Refusal::NotAllowed {
                role: Role::Approver,
            },
        },
        Difference::StartRefused {
            ticket: t("WEB-1"),
            at: at(11),
            services: vec![s("web")],
            refusal: Refusal::NotAccepted { ticket: t("WEB-1") },
            still_waiting: true,
        },
        // carol may approve now: her refused accept is carried out, and alice's comes too late.
        Difference::Allowed {
            ticket: Some(t("PAY-2")),
            by: u("carol"),
            command: "accept".to_string(),
            at: at(14),
            was: Refusal::NotAllowed {
                role: Role::Approver,
            },
        },
        Difference::Refused {
            ticket: Some(t("PAY-2")),
            by: u("alice"),
            command: "accept".to_string(),
            at: at(15),
            refusal: Refusal::AlreadyAccepted {
                ticket: t("PAY-2"),
                approver: u("carol"),
            },
        },
    ];
    assert_eq!(differences, expected, "{differences:#?}");
}

/// A start the new rules refuse for good (not curable by waiting) is reported at once, and the
/// rest of that deployment is dropped, not reported again.
#[test]
fn a_start_refused_for_good_drops_the_rest_of_its_deployment() {
    let lines = script(&[
        ("system", "policy"),
        ("dev", "dobro PAY-1 https://wiki/x rounding no_need_admin"),
        ("alice", "accept PAY-1"),
        ("oleg", "dep start PAY-1"),
        ("oleg", "dep finish PAY-1"),
    ]);
    let steps = record(&lines, &old_rules());
    let mut rules = old_rules();
    rules.admins.clear();
    let differences = what_if(State::default(), &steps, &rules);
    assert_eq!(
        differences,
        vec![Difference::StartRefused {
            ticket: t("PAY-1"),
            at: at(3),
            services: vec![s("billing")],
            refusal: Refusal::NotAllowed {
                role: Role::RequesterOrAdmin
            },
            still_waiting: false,
        }]
    );
}
