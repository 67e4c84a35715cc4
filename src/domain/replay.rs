//! Deciding recorded commands again, in order: the ledger as its own oracle, and what-if.
//!
//! A recorded command is a [`Step`]: who asked what, when, and the events it recorded. Every
//! step's command is known again from the ledger (the text as typed, parsed by the one parser;
//! a reminder from its event), and so is the policy that held at each point (`PolicyChanged`).
//!
//! - [`check`] decides each command again against the state before it, by the policy recorded
//!   then, and says where the result differs from what was recorded: nowhere, for a ledger
//!   written by this version of the rules.
//! - [`what_if`] decides the commands of a range again by a proposed policy and reports what
//!   would have gone otherwise: starts refused, starts that would have waited longer (or less),
//!   approvals that would not have counted, commands refused then and allowed now, and releases
//!   that ran together under the old rules and are kept apart by the new ones. A start the new
//!   rules hold back waits and is tried again as the state changes; the rest of that
//!   deployment (its finish, its rollback) moves with it.
//!
//! The tracker's answers are not in the ledger (only what they led to), so a request is decided
//! again with the tracker's verdict as recorded: a changed `[tracker]` section is not replayed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::command::Command;
use super::decide::{decide, refused};
use super::event::Event;
use super::policy::Policy;
use super::refusal::{CheckFailure, Refusal};
use super::state::State;
use super::tracker::TicketInTracker;
use super::types::{GroupName, LockKey, ServiceName, TicketKey, UserId};

/// One recorded command and what it recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The revision of its first event.
    pub revision: u64,
    pub at: DateTime<Utc>,
    pub kind: StepKind,
    /// The events it recorded, in order.
    pub recorded: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// A command someone (or the system) gave.
    Command { actor: UserId, command: Command },
    /// The rules changed (`PolicyChanged`).
    Policy,
    /// Recorded events whose command cannot be told again (a text this version does not
    /// parse): applied as facts.
    Fact,
}

/// A recorded command that, decided again, gives other events.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub revision: u64,
    pub recorded: Vec<Event>,
    pub replayed: Vec<Event>,
}

/// Decides every command again by the policy recorded before it and returns the mismatches.
/// Commands before the first recorded policy are taken as facts (the rules they were decided
/// by are not in the ledger), and so is every step after a mismatch (the state follows the
/// ledger, not the replay). Also the count of commands decided again.
pub fn check(start: State, steps: &[Step]) -> (usize, Vec<Mismatch>) {
    let mut checker = Checker::new(start);
    for step in steps {
        checker.step(step);
    }
    (checker.decided, checker.mismatches)
}

/// [`check`] a step at a time, so a long ledger is checked as it is read.
#[derive(Debug, Clone)]
pub struct Checker {
    state: State,
    /// Commands decided again so far.
    pub decided: usize,
    pub mismatches: Vec<Mismatch>,
}

impl Checker {
    pub fn new(start: State) -> Self {
        Checker {
            state: start,
            decided: 0,
            mismatches: Vec::new(),
        }
    }

    pub fn step(&mut self, step: &Step) {
        if let (StepKind::Command { actor, command }, Some(policy)) =
            (&step.kind, self.state.policy.clone())
        {
            self.decided += 1;
            let replayed = decide_again(
                &self.state,
                actor,
                command,
                &policy,
                step.at,
                &step.recorded,
            );
            if replayed != step.recorded {
                self.mismatches.push(Mismatch {
                    revision: step.revision,
                    recorded: step.recorded.clone(),
                    replayed,
                });
            }
        }
        for event in &step.recorded {
            self.state.evolve(event, step.at);
        }
    }
}

/// The events `command` records when decided against `state` by `policy`, with the tracker's
/// verdict taken from what `recorded` says of it.
pub fn decide_again(
    state: &State,
    actor: &UserId,
    command: &Command,
    policy: &Policy,
    at: DateTime<Utc>,
    recorded: &[Event],
) -> Vec<Event> {
    let result = match (command, &policy.tracker) {
        (Command::Request(_), Some(_)) => {
            let untracked = Policy {
                tracker: None,
                ..policy.clone()
            };
            with_recorded_tracker(decide(state, actor, command, &untracked, at), recorded)
        }
        _ => decide(state, actor, command, policy, at),
    };
    match result {
        Ok(events) => events,
        Err(refusal) if command.records_refusal() => vec![refused(actor, command, refusal)],
        Err(_) => Vec::new(),
    }
}

/// What the tracker said, as the recorded events of a request tell it.
enum TrackerVerdict {
    Passed(TicketInTracker),
    Failed(Vec<CheckFailure>),
    Unknown,
}

fn with_recorded_tracker(
    decided: Result<Vec<Event>, Refusal>,
    recorded: &[Event],
) -> Result<Vec<Event>, Refusal> {
    let verdict = match recorded.first() {
        Some(Event::ReleaseRequested {
            tracker: Some(tracker),
            ..
        }) => TrackerVerdict::Passed(tracker.clone()),
        Some(Event::CommandRefused {
            refusal: Refusal::ChecksFailed { failures, .. },
            ..
        }) => TrackerVerdict::Failed(
            failures
                .iter()
                .filter(|f| f.is_tracker())
                .cloned()
                .collect(),
        ),
        _ => TrackerVerdict::Unknown,
    };
    match (decided, verdict) {
        (Ok(mut events), TrackerVerdict::Passed(tracker)) => {
            if let Some(Event::ReleaseRequested { tracker: t, .. }) = events.first_mut() {
                *t = Some(tracker);
            }
            Ok(events)
        }
        (Ok(events), TrackerVerdict::Failed(failures)) if !failures.is_empty() => {
            match events.first() {
                Some(Event::ReleaseRequested { ticket, .. }) => Err(Refusal::ChecksFailed {
                    ticket: ticket.clone(),
                    failures,
                }),
                _ => Ok(events),
            }
        }
        (
            Err(Refusal::ChecksFailed {
                ticket,
                mut failures,
            }),
            TrackerVerdict::Failed(more),
        ) => {
            failures.extend(more);
            Err(Refusal::ChecksFailed { ticket, failures })
        }
        (other, _) => other,
    }
}

/// What would have gone otherwise under a proposed policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// The deployment started then; under the proposed rules it would not have, for a reason
    /// waiting does not cure, or it was still waiting at the end of the range.
    StartRefused {
        ticket: TicketKey,
        at: DateTime<Utc>,
        services: Vec<ServiceName>,
        refusal: Refusal,
        /// `true`: still waiting at the end of the range (the refusal is what it waited for).
        still_waiting: bool,
    },
    /// The deployment would have started later (or earlier, when `by_secs` is negative).
    StartMoved {
        ticket: TicketKey,
        services: Vec<ServiceName>,
        started_at: DateTime<Utc>,
        would_start_at: DateTime<Utc>,
        by_secs: i64,
        /// What it would have waited for at the time it started (none when earlier).
        waited_for: Option<Refusal>,
        /// The order of its request in the ledger (queue order: first requested is 1).
        request_order: u64,
    },
    /// It ran at the same time as another release under the old rules; the proposed rules'
    /// conflict group keeps them apart.
    KeptApart {
        ticket: TicketKey,
        other: TicketKey,
        group: GroupName,
        at: DateTime<Utc>,
    },
    /// An approval that would not have counted.
    ApprovalNotCounted {
        ticket: TicketKey,
        approver: UserId,
        at: DateTime<Utc>,
        refusal: Refusal,
    },
    /// A command carried out then and refused under the proposed rules.
    Refused {
        ticket: Option<TicketKey>,
        by: UserId,
        command: String,
        at: DateTime<Utc>,
        refusal: Refusal,
    },
    /// A command refused then and carried out under the proposed rules.
    Allowed {
        ticket: Option<TicketKey>,
        by: UserId,
        command: String,
        at: DateTime<Utc>,
        was: Refusal,
    },
}

impl Difference {
    /// When it happened (for ordering and the page).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Difference::StartRefused { at, .. }
            | Difference::KeptApart { at, .. }
            | Difference::ApprovalNotCounted { at, .. }
            | Difference::Refused { at, .. }
            | Difference::Allowed { at, .. } => *at,
            Difference::StartMoved { started_at, .. } => *started_at,
        }
    }

    pub fn ticket(&self) -> Option<&TicketKey> {
        match self {
            Difference::StartRefused { ticket, .. }
            | Difference::StartMoved { ticket, .. }
            | Difference::KeptApart { ticket, .. }
            | Difference::ApprovalNotCounted { ticket, .. } => Some(ticket),
            Difference::Refused { ticket, .. } | Difference::Allowed { ticket, .. } => {
                ticket.as_ref()
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Difference::StartRefused { .. } => "start_refused",
            Difference::StartMoved { .. } => "start_moved",
            Difference::KeptApart { .. } => "kept_apart",
            Difference::ApprovalNotCounted { .. } => "approval_not_counted",
            Difference::Refused { .. } => "refused",
            Difference::Allowed { .. } => "allowed",
        }
    }
}

/// A step waiting in the simulation: at its (maybe moved) time, in ledger order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: DateTime<Utc>,
    order: usize,
}

/// A start the proposed rules hold back, tried again as the state changes.
struct Held {
    step: usize,
    recorded_at: DateTime<Utc>,
    first: Refusal,
}

/// Decides the commands of `steps` again by `policy`, from `start` (the state at the beginning
/// of the range), and returns what would have differed, in time order. Reminders and policy
/// changes of the range are left out: the proposed policy holds throughout, and a reminder
/// follows from the rest. Never writes anything: the result is a value.
pub fn what_if(start: State, steps: &[Step], policy: &Policy) -> Vec<Difference> {
    let mut sim = Sim {
        state: start,
        policy,
        steps,
        differences: Vec::new(),
        queue: BinaryHeap::new(),
        held: BTreeMap::new(),
        parked: BTreeMap::new(),
        moved: BTreeMap::new(),
        early: BTreeMap::new(),
        lost: BTreeSet::new(),
    };
    for (order, step) in steps.iter().enumerate() {
        sim.queue.push(Reverse((Due { at: step.at, order }, false)));
    }
    while let Some(Reverse((due, moved))) = sim.queue.pop() {
        sim.run(due, moved);
        sim.retry_held(due.at);
    }
    sim.finish();
    let mut differences = sim.differences;
    differences.sort_by_key(|d| d.at());
    differences
}

struct Sim<'a> {
    state: State,
    policy: &'a Policy,
    steps: &'a [Step],
    differences: Vec<Difference>,
    /// Steps by time; `true` when already moved with their deployment.
    queue: BinaryHeap<Reverse<(Due, bool)>>,
    /// Starts held back, by ticket.
    held: BTreeMap<TicketKey, Held>,
    /// The later steps of a held-back deployment, until it starts.
    parked: BTreeMap<TicketKey, Vec<usize>>,
    /// How far a deployment moved, by ticket: its later steps move as far.
    moved: BTreeMap<TicketKey, TimeDelta>,
    /// Deployments that started before their recorded start: when.
    early: BTreeMap<TicketKey, DateTime<Utc>>,
    /// Releases that never started under the proposed rules: their later steps are dropped.
    lost: BTreeSet<TicketKey>,
}

impl Sim<'_> {
    fn run(&mut self, due: Due, already_moved: bool) {
        let step = &self.steps[due.order];
        let StepKind::Command { actor, command } = &step.kind else {
            if let StepKind::Fact = step.kind {
                self.apply(&step.recorded, due.at);
            }
            return;
        };
        if let Command::Remind { .. } | Command::AdoptPolicy(_) = command {
            return;
        }
        let ticket = command.ticket().cloned();
        if let Some(ticket) = &ticket {
            let after_start = matches!(
                command,
                Command::Finish { .. }
                    | Command::Rollback { .. }
                    | Command::Alive { .. }
                    | Command::Takeover { .. }
                    | Command::ForceTakeover { .. }
            );
            if after_start && self.lost.contains(ticket) {
                return;
            }
            if after_start && self.held.contains_key(ticket) {
                self.parked
                    .entry(ticket.clone())
                    .or_default()
                    .push(due.order);
                return;
            }
            if !already_moved
                && after_start
                && let Some(by) = self.moved.get(ticket).copied()
            {
                self.queue.push(Reverse((
                    Due {
                        at: due.at + by,
                        order: due.order,
                    },
                    true,
                )));
                return;
            }
        }
        let replayed = decide_again(
            &self.state,
            actor,
            command,
            self.policy,
            due.at,
            &step.recorded,
        );
        let was = refusal_of(&step.recorded);
        let now = refusal_of(&replayed);
        match (command, was, now) {
            (Command::Start { ticket }, None, Some(refusal)) => {
                if self.early.contains_key(ticket)
                    && matches!(refusal, Refusal::AlreadyDeploying { .. })
                {
                    let at = self.early[ticket];
                    self.moved_start(ticket, due.at, at, None);
                    return;
                }
                if refusal.waiting_cures() {
                    if let Refusal::LockHeld {
                        lock: LockKey::Group(group),
                        ticket: other,
                        ..
                    } = &refusal
                        && !recorded_groups(&step.recorded).contains(group)
                    {
                        self.differences.push(Difference::KeptApart {
                            ticket: ticket.clone(),
                            other: other.clone(),
                            group: group.clone(),
                            at: due.at,
                        });
                    }
                    self.held.insert(
                        ticket.clone(),
                        Held {
                            step: due.order,
                            recorded_at: due.at,
                            first: refusal,
                        },
                    );
                } else {
                    self.lost.insert(ticket.clone());
                    self.differences.push(Difference::StartRefused {
                        ticket: ticket.clone(),
                        at: due.at,
                        services: self.services_of(ticket, &step.recorded),
                        refusal,
                        still_waiting: false,
                    });
                }
                return;
            }
            (Command::Start { ticket }, Some(_), None) => {
                self.early.insert(ticket.clone(), due.at);
            }
            (
                Command::Accept { ticket },
                None,
                Some(refusal @ (Refusal::NotAllowed { .. } | Refusal::OwnRelease { .. })),
            ) => {
                self.differences.push(Difference::ApprovalNotCounted {
                    ticket: ticket.clone(),
                    approver: actor.clone(),
                    at: due.at,
                    refusal,
                });
            }
            (_, None, Some(refusal)) => self.differences.push(Difference::Refused {
                ticket,
                by: actor.clone(),
                command: command.verb().to_string(),
                at: due.at,
                refusal,
            }),
            (_, Some(was), None) => self.differences.push(Difference::Allowed {
                ticket,
                by: actor.clone(),
                command: command.verb().to_string(),
                at: due.at,
                was,
            }),
            _ => {}
        }
        self.apply(&replayed, due.at);
    }

    /// Tries the held-back starts again, in request order, at `at`.
    fn retry_held(&mut self, at: DateTime<Utc>) {
        let mut order: Vec<(u64, TicketKey)> = self
            .held
            .keys()
            .map(|t| (self.state.release(t).map_or(u64::MAX, |r| r.seq), t.clone()))
            .collect();
        order.sort();
        for (_, ticket) in order {
            let held = &self.held[&ticket];
            let step = &self.steps[held.step];
            let StepKind::Command { actor, command } = &step.kind else {
                continue;
            };
            let replayed =
                decide_again(&self.state, actor, command, self.policy, at, &step.recorded);
            if refusal_of(&replayed).is_some() {
                continue;
            }
            let held = self.held.remove(&ticket).expect("held");
            self.apply(&replayed, at);
            self.moved_start(&ticket, held.recorded_at, at, Some(held.first));
            let by = at - held.recorded_at;
            self.moved.insert(ticket.clone(), by);
            for order in self.parked.remove(&ticket).unwrap_or_default() {
                self.queue.push(Reverse((
                    Due {
                        at: self.steps[order].at + by,
                        order,
                    },
                    true,
                )));
            }
        }
    }

    fn moved_start(
        &mut self,
        ticket: &TicketKey,
        started_at: DateTime<Utc>,
        would_start_at: DateTime<Utc>,
        waited_for: Option<Refusal>,
    ) {
        let request_order = self.state.release(ticket).map_or(0, |r| r.seq + 1);
        let services = self
            .state
            .release(ticket)
            .map(|r| r.services.clone())
            .unwrap_or_default();
        self.differences.push(Difference::StartMoved {
            ticket: ticket.clone(),
            services,
            started_at,
            would_start_at,
            by_secs: (would_start_at - started_at).num_seconds(),
            waited_for,
            request_order,
        });
    }

    fn finish(&mut self) {
        for (ticket, held) in std::mem::take(&mut self.held) {
            let step = &self.steps[held.step];
            self.differences.push(Difference::StartRefused {
                services: self.services_of(&ticket, &step.recorded),
                ticket,
                at: held.recorded_at,
                refusal: held.first,
                still_waiting: true,
            });
        }
    }

    fn services_of(&self, ticket: &TicketKey, recorded: &[Event]) -> Vec<ServiceName> {
        recorded
            .iter()
            .find_map(|e| match e {
                Event::DeploymentStarted { services, .. } => Some(services.clone()),
                _ => None,
            })
            .or_else(|| self.state.release(ticket).map(|r| r.services.clone()))
            .unwrap_or_default()
    }

    fn apply(&mut self, events: &[Event], at: DateTime<Utc>) {
        for event in events {
            // A new request of a ticket is a new release: nothing of the last one carries over.
            if let Event::ReleaseRequested { ticket, .. } = event {
                self.moved.remove(ticket);
                self.early.remove(ticket);
                self.lost.remove(ticket);
            }
            self.state.evolve(event, at);
        }
    }
}

/// The groups a recorded start locked.
fn recorded_groups(recorded: &[Event]) -> Vec<GroupName> {
    recorded
        .iter()
        .find_map(|e| match e {
            Event::DeploymentStarted {
                conflict_groups, ..
            } => Some(conflict_groups.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The refusal a command's events record, if it was refused.
fn refusal_of(events: &[Event]) -> Option<Refusal> {
    match events {
        [Event::CommandRefused { refusal, .. }] => Some(refusal.clone()),
        _ => None,
    }
}
