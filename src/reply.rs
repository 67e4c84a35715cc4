//! The words a person reads: replies to commands, refusals, the queue, usage. The CLI prints
//! them and Slack will show them, so the wording lives in one place and is checked by snapshot
//! tests.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::domain::parse::{USAGE, usage};
use crate::domain::state::{AdminPresence, Stage};
use crate::domain::{CheckFailure, LockKey, ReleaseStatus, Role};
use crate::domain::{Event, ParseError, Policy, QueueItem, Refusal, State, TicketKey, Waiting};
use crate::projections::{Deployment, DeploymentOutcome, HistoryEntry};

/// Renders with the tracker link, if configured.
#[derive(Debug, Clone, Default)]
pub struct Renderer {
    pub tracker_url: Option<String>,
}

impl Renderer {
    /// The ticket's page in the tracker, when one is configured.
    pub fn tracker_link(&self, ticket: &TicketKey) -> Option<String> {
        self.tracker_url
            .as_ref()
            .map(|base| format!("{base}{ticket}"))
    }

    /// What the bot says after a command was recorded. `state` is the state right after.
    pub fn accepted(&self, events: &[Event], state: &State, policy: &Policy) -> String {
        events
            .iter()
            .map(|e| self.event(e, state, policy))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn event(&self, event: &Event, state: &State, policy: &Policy) -> String {
        match event {
            Event::ReleaseRequested {
                ticket,
                requester,
                services,
                wiki,
                comment,
                need_admin,
            } => {
                let mut text = format!(
                    "{requester} asks to release {} ({}).",
                    ticket,
                    join(services)
                );
                if !comment.is_empty() {
                    let _ = write!(text, "\n> {comment}");
                }
                if let Some(link) = self.tracker_link(ticket) {
                    let _ = write!(text, "\nTicket: {link}");
                }
                if let Some(wiki) = wiki {
                    let _ = write!(text, "\nRelease notes: {wiki}");
                }
                let admin = if *need_admin {
                    "needs an admin"
                } else {
                    "no admin needed"
                };
                let _ = write!(
                    text,
                    "\nWaiting for approval by {} ({admin}).",
                    people(&policy.approvers, "an approver")
                );
                text
            }
            Event::ReleaseApproved { ticket, approver } => {
                let next = match state.release(ticket).map(|r| &r.admin) {
                    Some(AdminPresence::Needed) => format!(
                        "Next: an admin ({}) joins with `here {ticket}`.",
                        people(&policy.admins, "none configured")
                    ),
                    _ => format!("Next: `dep start {ticket}`."),
                };
                format!("{approver} accepted {}. {next}", ticket)
            }
            Event::ReleaseRejected {
                ticket,
                approver,
                reason,
            } => format!("{approver} rejected {}: {reason}", ticket),
            Event::ReleaseCancelled { ticket, by } => {
                format!("{by} cancelled the request for {}.", ticket)
            }
            Event::AdminJoined { ticket, admin } => {
                let next = match state.release(ticket).map(|r| &r.stage) {
                    Some(Stage::Requested) => "Still waiting for approval.".to_string(),
                    _ => format!("Next: `dep start {ticket}`."),
                };
                format!("Admin found: {admin} joins {}. {next}", ticket)
            }
            Event::DeploymentStarted {
                ticket,
                by,
                services,
                conflict_groups,
            } => {
                let mut text = format!(
                    "Deployment of {} started by {by} on {}.",
                    ticket,
                    join(services)
                );
                if !conflict_groups.is_empty() {
                    let _ = write!(
                        text,
                        " Conflict group locked: {}.",
                        conflict_groups.join(", ")
                    );
                }
                let _ = write!(
                    text,
                    " When done: `dep finish {ticket}` or `dep rollback {ticket} <reason>`."
                );
                text
            }
            Event::DeploymentFinished { ticket, by } => {
                format!("Deployment of {} finished by {by}.", ticket)
            }
            Event::DeploymentRolledBack { ticket, by, reason } => {
                format!("Deployment of {} rolled back by {by}: {reason}", ticket)
            }
            Event::FreezeStarted {
                by,
                reason,
                services,
            } => {
                let scope = services
                    .as_ref()
                    .map_or("all services".to_string(), |s| join(s));
                format!("{by} froze releases of {scope}: {reason}")
            }
            Event::FreezeEnded { by } => {
                format!("{by} ended the freeze. Releases may start again.")
            }
            Event::CommandRefused { refusal, .. } => self.refusal(refusal),
            Event::ReminderSent { ticket, kind, .. } => {
                format!("Reminder sent about {}: {}.", ticket, kind_text(*kind))
            }
        }
    }

    /// Why a command was refused, naming exactly what failed.
    pub fn refusal(&self, refusal: &Refusal) -> String {
        match refusal {
            Refusal::ChecksFailed { ticket, failures } => {
                let mut text = format!("{} is not ready to be requested:", ticket);
                for failure in failures {
                    let line = match failure {
                        CheckFailure::TicketPattern { pattern } => {
                            format!("the ticket key does not match `{pattern}`")
                        }
                        CheckFailure::WikiLinkMissing => {
                            "a wiki or release-notes link (http or https) is missing".to_string()
                        }
                        CheckFailure::NoServices { project } => format!(
                            "no services are configured for project {project}; name them with `services=a,b`"
                        ),
                        CheckFailure::Tracker { name, detail } => format!("{name}: {detail}"),
                    };
                    let _ = write!(text, "\n• {line}");
                }
                text
            }
            Refusal::AlreadyOpen { ticket, status } => format!(
                "{} already has an open request ({}).",
                ticket,
                status_text(*status)
            ),
            Refusal::NoOpenRequest { ticket } => {
                format!("There is no open request for {}.", ticket)
            }
            Refusal::NotAllowed { role } => match role {
                Role::Approver => "Only an approver can do that.".to_string(),
                Role::Admin => "Only an admin can do that.".to_string(),
                Role::RequesterOrAdmin => "Only the requester or an admin can do that.".to_string(),
                Role::RequesterOrApprover => {
                    "Only the requester or an approver can do that.".to_string()
                }
            },
            Refusal::OwnRelease { ticket } => format!(
                "You requested {}, so another approver has to accept it (four eyes).",
                ticket
            ),
            Refusal::AlreadyAccepted { ticket, approver } => {
                format!("{} was already accepted by {approver}.", ticket)
            }
            Refusal::AdminNotNeeded { ticket } => {
                format!("{} does not need an admin.", ticket)
            }
            Refusal::AdminAlreadyJoined { ticket, admin } => {
                format!("{admin} already joined {} as its admin.", ticket)
            }
            Refusal::NotAccepted { ticket } => format!(
                "{} is not accepted yet: an approver has to `accept {ticket}` first.",
                ticket
            ),
            Refusal::AdminRequired { ticket } => format!(
                "{} needs an admin: an admin has to say `here {ticket}` first.",
                ticket
            ),
            Refusal::Frozen {
                by,
                since,
                reason,
                services,
            } => {
                let scope = services
                    .as_ref()
                    .map_or("all services".to_string(), |s| join(s));
                format!(
                    "Releases of {scope} are frozen by {by} since {}: {reason}",
                    time(*since)
                )
            }
            Refusal::LockHeld {
                lock,
                ticket,
                by,
                since,
            } => {
                let what = match lock {
                    LockKey::Service(s) => format!("Service {s} is"),
                    LockKey::Group(g) => format!("Conflict group {g} is"),
                };
                format!(
                    "{what} locked by the deployment of {}, started by {by} at {}.",
                    ticket,
                    time(*since)
                )
            }
            Refusal::NotYourTurn {
                ticket,
                ahead,
                service,
            } => format!(
                "{} waits its turn: {} was requested earlier for {service} and is ready to start.",
                ticket, ahead
            ),
            Refusal::AlreadyDeploying { ticket } => {
                format!("{} is already deploying.", ticket)
            }
            Refusal::NotDeploying { ticket } => {
                format!("{} has not started deploying.", ticket)
            }
            Refusal::AlreadyFrozen { by, since } => {
                format!(
                    "Releases are already frozen by {by} since {}.",
                    time(*since)
                )
            }
            Refusal::NotFrozen => "Releases are not frozen.".to_string(),
            Refusal::ReminderOutOfStage {
                ticket,
                reminder,
                status,
            } => format!(
                "No {} reminder for {}: it is {}.",
                kind_text(*reminder),
                ticket,
                status_text(*status)
            ),
            Refusal::AlreadyReminded { ticket, reminder } => format!(
                "The {} reminder for {} was already sent.",
                kind_text(*reminder),
                ticket
            ),
        }
    }

    /// The queue, one line per open request.
    pub fn queue(&self, items: &[QueueItem]) -> String {
        if items.is_empty() {
            return "The queue is empty.".to_string();
        }
        let mut text = String::from("Release queue:");
        for item in items {
            // The position is per service, so two releases of different services can both be
            // first in line: a numbered list would read as a mistake.
            let state = match (item.status, item.waiting_for.is_empty()) {
                (ReleaseStatus::Deploying, _) => "deploying now".to_string(),
                (status, true) => format!(
                    "#{} in line, {}, ready to start",
                    item.position,
                    status_text(status)
                ),
                (status, false) => {
                    let what: Vec<String> = item.waiting_for.iter().map(waiting_text).collect();
                    format!(
                        "#{} in line, {}, waiting for {}",
                        item.position,
                        status_text(status),
                        and_list(&what)
                    )
                }
            };
            let _ = write!(
                text,
                "\n• {} ({}) by {} — {state}",
                &item.ticket,
                join(&item.services),
                item.requester,
            );
        }
        text
    }

    /// `who SERVICE`: who deployed it, most recent first.
    pub fn who(&self, service: &str, deployments: &[&Deployment]) -> String {
        if deployments.is_empty() {
            return format!("Nobody has deployed {service}.");
        }
        let mut text = format!("Deployments of {service}, most recent first:");
        for d in deployments.iter().take(10) {
            let when = d.started_at.map(time).unwrap_or_default();
            let outcome = match d.outcome {
                None => "deploying",
                Some(DeploymentOutcome::Finished) => "finished",
                Some(DeploymentOutcome::RolledBack) => "rolled back",
                Some(DeploymentOutcome::Cancelled) => "cancelled",
                Some(DeploymentOutcome::Rejected) => "rejected",
            };
            let _ = write!(
                text,
                "\n• {} by {} at {when}: {outcome}",
                &d.ticket,
                d.started_by.as_ref().unwrap_or(&d.requester)
            );
        }
        text
    }

    /// Audit history lines, oldest first; at most the last `limit`.
    pub fn history(&self, entries: &[HistoryEntry], limit: usize) -> String {
        if entries.is_empty() {
            return "No events match.".to_string();
        }
        let skipped = entries.len().saturating_sub(limit);
        let noun = if entries.len() == 1 {
            "event"
        } else {
            "events"
        };
        let mut text = format!("History ({} {noun}", entries.len());
        if skipped > 0 {
            let _ = write!(text, ", the last {limit} shown");
        }
        text.push_str("):");
        for e in &entries[skipped..] {
            let _ = write!(
                text,
                "
#{} {} {} {} by {}: `{}`",
                e.revision,
                time(e.recorded_at),
                e.event_type,
                e.ticket.as_ref().map_or("-".to_string(), |t| t.to_string()),
                e.actor,
                e.command
            );
        }
        text
    }

    /// A command that was not understood, with the usage it was meant to follow.
    pub fn parse_error(&self, error: &ParseError) -> String {
        match error {
            ParseError::Empty => "Say a command; `help` lists them.".to_string(),
            ParseError::Unknown {
                word,
                did_you_mean: Some(verb),
            } => format!(
                "I don't know `{word}`. Did you mean `{verb}`? Usage: {}",
                usage(verb)
            ),
            ParseError::Unknown { word, .. } => {
                format!("I don't know `{word}`. {}", self.help())
            }
            other => format!("{other}"),
        }
    }

    pub fn help(&self) -> String {
        let mut text = String::from("Commands:");
        for (_, line) in USAGE {
            let _ = write!(text, "\n• {line}");
        }
        text
    }

    pub fn already_recorded(&self) -> String {
        "Already recorded: this message was delivered before.".to_string()
    }
}

fn waiting_text(waiting: &Waiting) -> String {
    match waiting {
        Waiting::Approval => "approval".to_string(),
        Waiting::Admin => "an admin".to_string(),
        Waiting::Freeze => "the freeze to end".to_string(),
        Waiting::Lock { lock, ticket } => match lock {
            LockKey::Service(s) => format!("the {s} lock (held by {ticket})"),
            LockKey::Group(g) => format!("the {g} group lock (held by {ticket})"),
        },
        Waiting::Turn { ahead } => format!("its turn (after {ahead})"),
    }
}

fn status_text(status: ReleaseStatus) -> &'static str {
    match status {
        ReleaseStatus::Requested => "requested",
        ReleaseStatus::Accepted => "accepted",
        ReleaseStatus::Deploying => "deploying",
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Any one of `set` will do: `alice`, `alice or bob`, `alice, bob or carol`.
fn people<T: std::fmt::Display>(set: &std::collections::BTreeSet<T>, none: &str) -> String {
    let names: Vec<String> = set.iter().map(|p| p.to_string()).collect();
    match names.split_last() {
        None => none.to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// All of `items`: `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Reminders (`domain::reminders`) and the waitlist (`slack::waitlist`).
impl Renderer {
    /// A reminder, posted in the release's thread. The front puts the people it is for
    /// (`due.mention`) in front of it, as mentions.
    pub fn reminder(&self, due: &crate::domain::Due, now: DateTime<Utc>) -> String {
        use crate::domain::ReminderKind;
        let ticket = &due.ticket;
        let waited = elapsed(due.since, now);
        match due.kind {
            ReminderKind::Approval => format!(
                "{} by {} has waited {waited} for approval. \
                 `accept {ticket}` or `reject {ticket} <reason>`.",
                ticket, due.requester
            ),
            ReminderKind::Escalation => format!(
                "{} by {} has waited {waited} for approval and nobody has answered. \
                 Please `accept {ticket}` or `reject {ticket} <reason>`.",
                ticket, due.requester
            ),
            ReminderKind::OverdueDeployment => format!(
                "The deployment of {} has been running for {waited}, longer than expected. \
                 Finish it with `dep finish {ticket}` or roll back with \
                 `dep rollback {ticket} <reason>`.",
                ticket
            ),
            ReminderKind::StaleLock => {
                let locks: Vec<String> = due.locks.iter().map(lock_text).collect();
                format!(
                    "Stale lock: the deployment of {} has held {} since {} ({waited}). \
                     Others cannot deploy until it finishes (`dep finish {ticket}`) or rolls \
                     back (`dep rollback {ticket} <reason>`).",
                    ticket,
                    and_list(&locks),
                    time(due.since)
                )
            }
        }
    }

    /// The direct message to someone whose `dep start` a lock held up, when that lock is free.
    /// `item` is their release as the queue shows it now; `place` their place on the waitlist.
    pub fn waitlist_freed(&self, freed: &TicketKey, item: &QueueItem, place: usize) -> String {
        let ticket = &item.ticket;
        let mut text = format!(
            "The deployment of {} is over and its locks are free. You were #{place} waiting \
             to start {}.",
            freed, ticket
        );
        if item.waiting_for.is_empty() {
            let _ = write!(text, " You can `dep start {ticket}` now.");
        } else {
            let what: Vec<String> = item.waiting_for.iter().map(waiting_text).collect();
            let _ = write!(text, " {} still waits for {}.", ticket, and_list(&what));
        }
        text
    }
}

fn kind_text(kind: crate::domain::ReminderKind) -> &'static str {
    use crate::domain::ReminderKind;
    match kind {
        ReminderKind::Approval => "approval",
        ReminderKind::Escalation => "escalation",
        ReminderKind::OverdueDeployment => "overdue deployment",
        ReminderKind::StaleLock => "stale lock",
    }
}

fn lock_text(lock: &LockKey) -> String {
    match lock {
        LockKey::Service(s) => format!("the {s} lock"),
        LockKey::Group(g) => format!("the {g} group lock"),
    }
}

/// How long from `since` to `now`, to the minute: `45 min`, `1 h 5 min`, `2 d 3 h`.
fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}
