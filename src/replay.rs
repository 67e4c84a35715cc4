//! The recorded commands of a stretch of the ledger, told again as `domain::replay::Step`s, for
//! `verify` (every decision again, by the policy recorded then) and `what-if` (by a proposed
//! policy). Reads the store; the deciding is pure (`domain::replay`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use crate::domain::replay::{Checker, Difference, Mismatch, Step, StepKind};
use crate::domain::{Command, Event, Input, Policy, State, parse};
use crate::envelope::{self, DecodeError, Source};
use crate::projections::{AsOf, ProjectionError};
use crate::store::{EventStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Projection(#[from] ProjectionError),
}

/// The events from revision `from` on (up to `until`, by time), grouped into the commands that
/// recorded them: a command's events are consecutive and share its correlation id and time.
pub async fn steps(
    store: &Arc<dyn EventStore>,
    stream: &str,
    from: u64,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<Step>, ReplayError> {
    let mut steps = Vec::new();
    each_step(store, stream, from, until, |step| steps.push(step)).await?;
    Ok(steps)
}

/// Hands each step to `f` as the ledger is read, a page at a time.
async fn each_step(
    store: &Arc<dyn EventStore>,
    stream: &str,
    from: u64,
    until: Option<DateTime<Utc>>,
    mut f: impl FnMut(Step),
) -> Result<(), ReplayError> {
    let mut current: Option<(Step, (uuid::Uuid, DateTime<Utc>))> = None;
    let mut pages = store.read_pages(stream, from);
    'read: while let Some(page) = pages.try_next().await? {
        for stored in &page {
            let recorded = envelope::decode(stored)?;
            let meta = &recorded.metadata;
            if until.is_some_and(|u| meta.recorded_at > u) {
                break 'read;
            }
            let key = (meta.correlation_id, meta.recorded_at);
            match &mut current {
                Some((step, last)) if *last == key && !matches!(step.kind, StepKind::Policy) => {
                    step.recorded.push(recorded.event);
                }
                _ => {
                    let next = Step {
                        revision: recorded.revision,
                        at: meta.recorded_at,
                        kind: kind(&recorded),
                        recorded: vec![recorded.event],
                    };
                    if let Some((done, _)) = current.replace((next, key)) {
                        f(done);
                    }
                }
            }
        }
    }
    if let Some((done, _)) = current {
        f(done);
    }
    Ok(())
}

/// The command an event's metadata tells: the text as typed, parsed again; a reminder from its
/// event; a policy change as such.
fn kind(recorded: &envelope::Recorded) -> StepKind {
    let meta = &recorded.metadata;
    match (&recorded.event, meta.actor.source) {
        (Event::PolicyChanged { .. }, _) => StepKind::Policy,
        (Event::ReminderSent { ticket, kind, .. }, Source::System) => StepKind::Command {
            actor: meta.actor.id.clone(),
            command: Command::Remind {
                ticket: ticket.clone(),
                kind: *kind,
            },
        },
        _ => match parse(&meta.command) {
            Ok(Input::Command(command)) => StepKind::Command {
                actor: meta.actor.id.clone(),
                command,
            },
            _ => StepKind::Fact,
        },
    }
}

/// Every recorded command decided again by the policy recorded before it: how many were, and
/// where the result differs from the ledger.
pub async fn check(
    store: &Arc<dyn EventStore>,
    stream: &str,
) -> Result<(usize, Vec<Mismatch>), ReplayError> {
    let mut checker = Checker::new(State::default());
    each_step(store, stream, 0, None, |step| checker.step(&step)).await?;
    Ok((checker.decided, checker.mismatches))
}

/// What the commands recorded from `since` to `until` would have led to under `policy`.
pub async fn what_if(
    store: &Arc<dyn EventStore>,
    stream: &str,
    policy: &Policy,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<WhatIf, ReplayError> {
    // The state just before the range, from the nearest snapshot.
    let before = since - chrono::TimeDelta::milliseconds(1);
    let live = crate::read::live_as_of(store, stream, AsOf::Time(before)).await?;
    let from = live.revision.map_or(0, |r| r + 1);
    let steps = steps(store, stream, from, until).await?;
    let commands = steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Command { .. }))
        .count();
    let differences = crate::domain::replay::what_if(live.state, &steps, policy);
    Ok(WhatIf {
        since,
        until,
        commands,
        differences,
    })
}

/// A what-if's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WhatIf {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    /// How many recorded commands were decided again.
    pub commands: usize,
    pub differences: Vec<Difference>,
}
