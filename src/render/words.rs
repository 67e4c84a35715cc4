//! The words a person reads: replies to commands, refusals, the queue, usage, reminders and
//! notices. Written once for every medium: each typed part (a ticket, a person, a command to
//! type, someone's own text) goes through the medium's `Markup`. The plain rendering is checked
//! by snapshot tests, so a change in wording is a reviewed diff.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Html, Markup, Plain, Slack};
use crate::answer::Answer;
use crate::domain::parse::{USAGE, usage};
use crate::domain::state::{AdminPresence, Stage};
use crate::domain::tracker::{NotCheckedCause, TicketInTracker, TrackerCheck};
use crate::domain::{
    CheckFailure, Due, Event, LockKey, ParseError, Policy, QueueItem, Refusal, ReleaseStatus,
    ReminderKind, Role, RoleEntry, State, TicketKey, UserId, Waiting,
};
use crate::domain::{HistoryFilter, PolicyCause, ServiceName};
use crate::notices::{Audience, Notice};
use crate::projections::{Deployment, DeploymentOutcome, HistoryEntry};

/// Renders answers in one medium, with tickets linked to the tracker when one is configured.
#[derive(Clone)]
pub struct Renderer {
    tracker_url: Option<String>,
    /// The timeline page's address (`[http] public_url`), for permalinks in replies.
    page_url: Option<String>,
    markup: Arc<dyn Markup>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("tracker_url", &self.tracker_url)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    pub fn new(tracker_url: Option<String>, markup: impl Markup + 'static) -> Self {
        Renderer {
            tracker_url,
            page_url: None,
            markup: Arc::new(markup),
        }
    }

    /// With the timeline page at `url` (`[http] public_url`): `history`, `who` and
    /// `suspects` end with a link to the page showing the same.
    pub fn with_page(mut self, url: Option<String>) -> Self {
        self.page_url = url.map(|u| format!("{}/", u.trim_end_matches('/')));
        self
    }

    /// The timeline page's address, ending in `/`, when one is configured.
    pub fn page_url(&self) -> Option<&str> {
        self.page_url.as_deref()
    }

    /// A last line linking to the timeline page (when `[http] public_url` is set) with
    /// `params`, over the stretch of time `times` cover (widened by half an hour each side,
    /// and at most the page's 31 days, ending with the latest).
    fn permalink(
        &self,
        params: &[(&str, String)],
        times: impl Iterator<Item = DateTime<Utc>>,
    ) -> String {
        let Some(page) = &self.page_url else {
            return String::new();
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            query.append_pair(name, value);
        }
        let times: Vec<DateTime<Utc>> = times.collect();
        if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
            let until = *last + chrono::Duration::minutes(30);
            let since =
                (*first - chrono::Duration::minutes(30)).max(until - chrono::Duration::days(30));
            let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            query.append_pair("since", &at(since));
            query.append_pair("until", &at(until));
        }
        format!(
            "\nOn the timeline: {}",
            self.markup.url(&format!("{page}?{}", query.finish()))
        )
    }

    pub fn plain(tracker_url: Option<String>) -> Self {
        Renderer::new(tracker_url, Plain)
    }

    pub fn slack(tracker_url: Option<String>) -> Self {
        Renderer::new(tracker_url, Slack)
    }

    pub fn html(tracker_url: Option<String>) -> Self {
        Renderer::new(tracker_url, Html)
    }

    /// The ticket's page in the tracker, when one is configured.
    pub fn tracker_link(&self, ticket: &TicketKey) -> Option<String> {
        self.tracker_url
            .as_ref()
            .map(|base| format!("{base}{ticket}"))
    }

    /// A ticket, as this medium links it.
    pub fn ticket(&self, ticket: &TicketKey) -> String {
        self.markup
            .ticket(ticket, self.tracker_link(ticket).as_deref())
    }

    /// A person, as this medium names them (a mention in Slack).
    pub fn person(&self, user: &UserId) -> String {
        self.markup.person(user)
    }

    /// A role entry of the config: a person, or a Slack user group.
    pub fn role(&self, entry: &RoleEntry) -> String {
        match entry {
            RoleEntry::User(user) => self.markup.person(user),
            RoleEntry::Group(group) => self.markup.group(group),
        }
    }

    fn code(&self, command: impl AsRef<str>) -> String {
        self.markup.code(command.as_ref())
    }

    /// Text typed by a person, escaped as this medium needs.
    pub fn text(&self, text: impl AsRef<str>) -> String {
        self.markup.text(text.as_ref())
    }

    /// The whole answer.
    pub fn answer(&self, answer: &Answer) -> String {
        match answer {
            Answer::Accepted {
                events,
                state,
                policy,
                ..
            } => self.accepted(events, state, policy),
            Answer::Refused(refusal) => self.refusal(refusal),
            Answer::AlreadyRecorded => self.already_recorded(),
            Answer::NotUnderstood(error) => self.parse_error(error),
            Answer::NotRecorded(error) => self.text(format!(
                "Your command was not recorded: {error}. Please try again."
            )),
            Answer::Help => self.help(),
            Answer::Queue(items) => self.queue(items),
            Answer::Who {
                service,
                deployments,
            } => self.who(service.as_str(), deployments),
            Answer::History {
                filter,
                total,
                shown,
            } => self.history(filter, *total, shown),
            Answer::Suspects {
                at,
                window,
                services,
                deployments,
            } => self.suspects(*at, *window, services, deployments),
            Answer::CannotRead(error) => self.text(format!("Cannot read the ledger: {error}")),
        }
    }

    /// What the bot says after a command was recorded. `state` is the state right after.
    pub fn accepted(&self, events: &[Event], state: &State, policy: &Policy) -> String {
        events
            .iter()
            .map(|e| self.event(e, state, policy))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One recorded step, as its release's thread shows it.
    pub fn event(&self, event: &Event, state: &State, policy: &Policy) -> String {
        match event {
            Event::ReleaseRequested {
                ticket,
                requester,
                services,
                wiki,
                comment,
                need_admin,
                tracker,
            } => {
                let mut text = format!(
                    "{} asks to release {} ({}).",
                    self.person(requester),
                    self.ticket(ticket),
                    self.list(services)
                );
                if !comment.is_empty() {
                    let _ = write!(text, "\n> {}", self.text(comment));
                }
                if let Some(tracker) = tracker {
                    let _ = write!(text, "\n{}", self.in_tracker(tracker));
                }
                if let Some(link) = self.tracker_link(ticket) {
                    let _ = write!(text, "\nTicket: {}", self.markup.url(&link));
                }
                if let Some(wiki) = wiki {
                    let _ = write!(text, "\nRelease notes: {}", self.markup.url(wiki.as_str()));
                }
                let admin = if *need_admin {
                    "needs an admin"
                } else {
                    "no admin needed"
                };
                let _ = write!(
                    text,
                    "\nWaiting for approval by {} ({admin}).",
                    self.people(&policy.approvers, "an approver")
                );
                text
            }
            Event::ReleaseApproved { ticket, approver } => {
                let next = match state.release(ticket).map(|r| &r.admin) {
                    Some(AdminPresence::Needed) => format!(
                        "Next: an admin ({}) joins with {}.",
                        self.people(&policy.admins, "none configured"),
                        self.code(format!("here {ticket}"))
                    ),
                    _ => format!("Next: {}.", self.code(format!("dep start {ticket}"))),
                };
                format!(
                    "{} accepted {}. {next}",
                    self.person(approver),
                    self.ticket(ticket)
                )
            }
            Event::ReleaseRejected {
                ticket,
                approver,
                reason,
            } => format!(
                "{} rejected {}: {}",
                self.person(approver),
                self.ticket(ticket),
                self.text(reason)
            ),
            Event::ReleaseCancelled { ticket, by } => format!(
                "{} cancelled the request for {}.",
                self.person(by),
                self.ticket(ticket)
            ),
            Event::AdminJoined { ticket, admin } => {
                let next = match state.release(ticket).map(|r| &r.stage) {
                    Some(Stage::Requested) => "Still waiting for approval.".to_string(),
                    // Joined by starting it: the start says the rest.
                    Some(Stage::Deploying { .. }) => "The admin starts it.".to_string(),
                    _ => format!("Next: {}.", self.code(format!("dep start {ticket}"))),
                };
                format!(
                    "Admin found: {} joins {}. {next}",
                    self.person(admin),
                    self.ticket(ticket)
                )
            }
            Event::DeploymentStarted {
                ticket,
                by,
                services,
                conflict_groups,
            } => {
                let mut text = format!(
                    "Deployment of {} started by {} on {}.",
                    self.ticket(ticket),
                    self.person(by),
                    self.list(services)
                );
                if !conflict_groups.is_empty() {
                    let _ = write!(
                        text,
                        " Conflict group locked: {}.",
                        self.list(conflict_groups)
                    );
                }
                let _ = write!(
                    text,
                    " When done: {} or {}.",
                    self.code(format!("dep finish {ticket}")),
                    self.code(format!("dep rollback {ticket} <reason>"))
                );
                text
            }
            Event::DeploymentFinished { ticket, by } => format!(
                "Deployment of {} finished by {}.",
                self.ticket(ticket),
                self.person(by)
            ),
            Event::DeploymentRolledBack { ticket, by, reason } => format!(
                "Deployment of {} rolled back by {}: {}",
                self.ticket(ticket),
                self.person(by),
                self.text(reason)
            ),
            Event::DeploymentAbandoned {
                ticket,
                by,
                reason,
                proposed_by,
            } => {
                let who = match proposed_by {
                    Some(first) => {
                        format!("{} and {} (forced)", self.person(first), self.person(by))
                    }
                    None => self.person(by),
                };
                format!(
                    "Deployment of {} taken over by {who}; its locks are free and the release \
                     is closed. Reason: {}",
                    self.ticket(ticket),
                    self.text(reason)
                )
            }
            Event::TakeoverProposed {
                ticket,
                by,
                reason,
                second,
            } => format!(
                "{} proposes to take over the deployment of {}; {} has to confirm with {}. \
                 Reason: {}",
                self.person(by),
                self.ticket(ticket),
                self.second(*second, &policy.admins, &policy.approvers),
                self.code(format!("dep takeover {ticket} --force")),
                self.text(reason)
            ),
            Event::FreezeStarted {
                by,
                reason,
                services,
            } => format!(
                "{} froze releases of {}: {}",
                self.person(by),
                self.scope(services.as_deref()),
                self.text(reason)
            ),
            Event::FreezeEnded { by } => {
                format!(
                    "{} ended the freeze. Releases may start again.",
                    self.person(by)
                )
            }
            Event::CommandRefused { refusal, .. } => self.refusal(refusal),
            Event::ReminderSent { ticket, kind, .. } => format!(
                "Reminder sent about {}: {}.",
                self.ticket(ticket),
                kind_text(*kind)
            ),
            Event::DeploymentAlive {
                ticket,
                by,
                within_secs,
            } => format!(
                "The deployment of {} is alive ({}); next sign of life within {}.",
                self.ticket(ticket),
                self.person(by),
                span(i64::try_from(*within_secs).unwrap_or(i64::MAX))
            ),
            Event::PolicyChanged {
                changes,
                cause,
                host,
                process,
                ..
            } => {
                let why = match cause {
                    PolicyCause::Start => "at the start of",
                    PolicyCause::Reload => "on a config reload by",
                    PolicyCause::Directory => "from the Slack user groups, by",
                };
                let mut text = format!(
                    "The rules changed {why} {} (process {process}):",
                    self.text(host)
                );
                for change in changes {
                    let _ = write!(text, "\n• {}", self.text(change));
                }
                text
            }
        }
    }

    /// One ticket check that failed.
    pub fn check_failure(&self, failure: &CheckFailure) -> String {
        match failure {
            CheckFailure::TicketPattern { pattern } => {
                format!("the ticket key does not match {}", self.code(pattern))
            }
            CheckFailure::WikiLinkMissing => {
                "a wiki or release-notes link (http or https) is missing".to_string()
            }
            CheckFailure::NoServices { project } => format!(
                "no services are configured for project {}; name them with {}",
                self.text(project),
                self.code("services=a,b")
            ),
            CheckFailure::TicketNotFound => {
                "the ticket is not in the tracker (or dobrobot's account may not see it)"
                    .to_string()
            }
            CheckFailure::StatusNotAllowed {
                status,
                statuses,
                status_categories,
            } => {
                let mut text = format!("its status in the tracker is {}", self.text(status));
                if !statuses.is_empty() {
                    let _ = write!(text, ", not one of {}", self.list(statuses));
                }
                if !status_categories.is_empty() {
                    let _ = write!(
                        text,
                        " (nor in the category {})",
                        self.list(status_categories)
                    );
                }
                text
            }
            CheckFailure::NoFixVersion => "it has no fix version in the tracker".to_string(),
            CheckFailure::NoAssignee => "nobody is assigned to it in the tracker".to_string(),
            CheckFailure::IssueTypeNotAllowed {
                issue_type,
                allowed,
            } => format!(
                "its type in the tracker is {}, not one of {}",
                self.text(issue_type),
                self.list(allowed)
            ),
            CheckFailure::LabelMissing { labels } => format!(
                "it has none of the labels {} in the tracker (one is enough)",
                self.list(labels)
            ),
            CheckFailure::TrackerUnavailable { reason } => format!(
                "the tracker could not be asked ({}); requests are refused until it answers",
                self.text(reason)
            ),
            CheckFailure::TrackerMisconfigured { reason } => format!(
                "configuration error, for the admins: the tracker refused dobrobot's \
                 credentials ({}); check [tracker] and its token",
                self.text(reason)
            ),
        }
    }

    /// What the tracker said of a requested ticket, or which of its checks were not made.
    pub fn in_tracker(&self, tracker: &TicketInTracker) -> String {
        match tracker {
            TicketInTracker::Checked {
                summary, status, ..
            } => format!(
                "In the tracker: {} ({})",
                self.text(summary),
                self.text(status)
            ),
            TicketInTracker::NotChecked {
                cause,
                reason,
                checks,
            } => {
                let why = match cause {
                    NotCheckedCause::Unavailable => "the tracker could not be asked",
                    NotCheckedCause::Misconfigured => {
                        "the tracker refused dobrobot's credentials (a configuration error)"
                    }
                };
                let checks: Vec<String> = checks
                    .iter()
                    .map(|c| tracker_check_text(*c).to_string())
                    .collect();
                format!(
                    "Not checked in the tracker, because {why} ({}): {}.",
                    self.text(reason),
                    and_list(&checks)
                )
            }
        }
    }

    /// Why a command was refused, naming exactly what failed.
    pub fn refusal(&self, refusal: &Refusal) -> String {
        let t = |ticket: &TicketKey| self.ticket(ticket);
        match refusal {
            Refusal::ChecksFailed { ticket, failures } => {
                let mut text = format!("{} is not ready to be requested:", t(ticket));
                for failure in failures {
                    let line = self.check_failure(failure);
                    let _ = write!(text, "\n• {line}");
                }
                text
            }
            Refusal::AlreadyOpen { ticket, status } => format!(
                "{} already has an open request ({}).",
                t(ticket),
                status_text(*status)
            ),
            Refusal::NoOpenRequest { ticket } => {
                format!("There is no open request for {}.", t(ticket))
            }
            Refusal::NotAllowed { role } => match role {
                Role::Approver => "Only an approver can do that.".to_string(),
                Role::Admin => "Only an admin can do that.".to_string(),
                Role::RequesterOrAdmin => "Only the requester or an admin can do that.".to_string(),
                Role::RequesterOrApprover => {
                    "Only the requester or an approver can do that.".to_string()
                }
                Role::AdminOrApprover => "Only an admin or an approver can do that.".to_string(),
            },
            Refusal::OwnRelease { ticket } => format!(
                "You requested {}, so another approver has to accept it (four eyes).",
                t(ticket)
            ),
            Refusal::AlreadyAccepted { ticket, approver } => format!(
                "{} was already accepted by {}.",
                t(ticket),
                self.person(approver)
            ),
            Refusal::AdminNotNeeded { ticket } => {
                format!("{} does not need an admin.", t(ticket))
            }
            Refusal::AdminAlreadyJoined { ticket, admin } => format!(
                "{} already joined {} as its admin.",
                self.person(admin),
                t(ticket)
            ),
            Refusal::NotAccepted { ticket } => format!(
                "{} is not accepted yet: an approver has to {} first.",
                t(ticket),
                self.code(format!("accept {ticket}"))
            ),
            Refusal::AdminRequired { ticket } => format!(
                "{} needs an admin: an admin has to say {} first.",
                t(ticket),
                self.code(format!("here {ticket}"))
            ),
            Refusal::Frozen {
                by,
                since,
                reason,
                services,
            } => format!(
                "Releases of {} are frozen by {} since {}: {}",
                self.scope(services.as_deref()),
                self.person(by),
                time(*since),
                self.text(reason)
            ),
            Refusal::LockHeld {
                lock,
                ticket,
                by,
                since,
            } => {
                let what = match lock {
                    LockKey::Service(s) => format!("Service {} is", self.text(s)),
                    LockKey::Group(g) => format!("Conflict group {} is", self.text(g)),
                };
                format!(
                    "{what} locked by the deployment of {}, started by {} at {}.",
                    t(ticket),
                    self.person(by),
                    time(*since)
                )
            }
            Refusal::NotYourTurn {
                ticket,
                ahead,
                over,
            } => format!(
                "{} waits its turn: {} was requested earlier for {} and is ready to start.",
                t(ticket),
                t(ahead),
                self.turn_over(over)
            ),
            Refusal::AlreadyDeploying { ticket } => {
                format!("{} is already deploying.", t(ticket))
            }
            Refusal::TakeoverTooSoon {
                ticket,
                since,
                after_secs,
            } => format!(
                "The deployment of {} started at {}: an admin alone may take it over once it has \
                 run {}. Before that it takes an admin and an approver: {}.",
                t(ticket),
                time(*since),
                span(i64::try_from(*after_secs).unwrap_or(i64::MAX)),
                self.code(format!("dep takeover {ticket} --force <reason>"))
            ),
            Refusal::NoTakeoverProposed { ticket } => format!(
                "Nobody has proposed to take over {}: give a reason to propose it, {}.",
                t(ticket),
                self.code(format!("dep takeover {ticket} --force <reason>"))
            ),
            Refusal::TakeoverAlreadyProposed { ticket, by } => format!(
                "{} proposed to take over {}: a second person has to confirm it (four eyes).",
                self.person(by),
                t(ticket)
            ),
            Refusal::TakeoverNeedsSecond {
                ticket,
                proposed_by,
                role,
            } => format!(
                "The takeover of {} proposed by {} needs {} to confirm it (an approver and an \
                 admin together).",
                t(ticket),
                self.person(proposed_by),
                role_text(*role)
            ),
            Refusal::NotDeploying { ticket } => {
                format!("{} has not started deploying.", t(ticket))
            }
            Refusal::AlreadyFrozen { by, since } => format!(
                "Releases are already frozen by {} since {}.",
                self.person(by),
                time(*since)
            ),
            Refusal::NotFrozen => "Releases are not frozen.".to_string(),
            Refusal::ReminderOutOfStage {
                ticket,
                reminder,
                status,
            } => format!(
                "No {} reminder for {}: it is {}.",
                kind_text(*reminder),
                t(ticket),
                status_text(*status)
            ),
            Refusal::AlreadyReminded { ticket, reminder } => format!(
                "The {} reminder for {} was already sent.",
                kind_text(*reminder),
                t(ticket)
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
            let _ = write!(text, "\n• {}", self.queue_item(item));
        }
        text
    }

    /// One open request of the queue: the ticket, its services, who asked, and where it
    /// stands.
    pub fn queue_item(&self, item: &QueueItem) -> String {
        // The position is per service and conflict group, so two releases of unrelated services
        // can both be first in line: a numbered list would read as a mistake.
        let state = match (item.status, item.waiting_for.is_empty()) {
            (ReleaseStatus::Deploying, _) => "deploying now".to_string(),
            (status, true) => format!(
                "#{} in line, {}, ready to start",
                item.position,
                status_text(status)
            ),
            (status, false) => format!(
                "#{} in line, {}, waiting for {}",
                item.position,
                status_text(status),
                self.waiting_list(&item.waiting_for)
            ),
        };
        format!(
            "{} ({}) by {} — {state}",
            self.ticket(&item.ticket),
            self.list(&item.services),
            self.person(&item.requester),
        )
    }

    /// `who SERVICE`: who deployed it, most recent first.
    pub fn who(&self, service: &str, deployments: &[Deployment]) -> String {
        if deployments.is_empty() {
            return format!("Nobody has deployed {}.", self.text(service));
        }
        let mut text = format!("Deployments of {}, most recent first:", self.text(service));
        for d in deployments {
            let when = d.started_at.map(time).unwrap_or_default();
            let outcome = outcome_word(d.outcome);
            let _ = write!(
                text,
                "\n• {} by {} at {when}: {outcome}",
                self.ticket(&d.ticket),
                self.person(d.started_by.as_ref().unwrap_or(&d.requester))
            );
        }
        text.push_str(
            &self.permalink(
                &[("service", service.to_string())],
                deployments
                    .iter()
                    .flat_map(|d| [d.started_at, d.finished_at])
                    .flatten(),
            ),
        );
        text
    }

    /// `suspects`: what ran on the services in the window before a time, latest first.
    pub fn suspects(
        &self,
        at: DateTime<Utc>,
        window: chrono::Duration,
        services: &[ServiceName],
        deployments: &[Deployment],
    ) -> String {
        let on = if services.is_empty() {
            "any service".to_string()
        } else {
            self.list(services)
        };
        let before = format!("in the {} before {}", span(window.num_seconds()), time(at));
        let mut text = if deployments.is_empty() {
            format!("Nothing ran on {on} {before}.")
        } else {
            format!("What ran on {on} {before}, latest first:")
        };
        for d in deployments {
            let outcome = match (d.outcome, d.finished_at) {
                (None, _) => "still deploying".to_string(),
                (
                    Some(
                        ended @ (DeploymentOutcome::Finished
                        | DeploymentOutcome::RolledBack
                        | DeploymentOutcome::Abandoned),
                    ),
                    Some(t),
                ) => {
                    format!("{} at {}", outcome_word(Some(ended)), time(t))
                }
                (ended, _) => outcome_word(ended).to_string(),
            };
            let _ = write!(
                text,
                "\n• {} ({}) started by {} at {}: {outcome}",
                self.ticket(&d.ticket),
                self.list(&d.services),
                self.person(d.started_by.as_ref().unwrap_or(&d.requester)),
                d.started_at.map(time).unwrap_or_default(),
            );
        }
        let mut params = vec![
            ("at", at.format("%Y-%m-%dT%H:%MZ").to_string()),
            ("window", format!("{}m", window.num_minutes().max(1))),
        ];
        if let [service] = services {
            params.push(("service", service.to_string()));
        }
        text.push_str(&self.permalink(&params, std::iter::empty()));
        text
    }

    /// Audit history lines, oldest first: the last few (`shown`) of `total` matching events.
    pub fn history(&self, filter: &HistoryFilter, total: usize, shown: &[HistoryEntry]) -> String {
        if total == 0 {
            return "No events match.".to_string();
        }
        let noun = if total == 1 { "event" } else { "events" };
        let mut text = format!("History ({total} {noun}");
        if shown.len() < total {
            let _ = write!(text, ", the last {} shown", shown.len());
        }
        text.push_str("):");
        for e in shown {
            let actor = match UserId::parse(&e.actor) {
                Ok(id) => self.person(&id),
                Err(_) => self.text(&e.actor),
            };
            let _ = write!(
                text,
                "\n#{} {} {} {} by {actor}: {}",
                e.revision,
                time(e.recorded_at),
                e.event_type,
                e.ticket
                    .as_ref()
                    .map_or("-".to_string(), |t| self.ticket(t)),
                self.code(&e.command)
            );
        }
        let params: Vec<(&str, String)> = [
            ("ticket", filter.ticket.as_ref().map(ToString::to_string)),
            ("service", filter.service.as_ref().map(ToString::to_string)),
            ("actor", filter.actor.as_ref().map(ToString::to_string)),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        text.push_str(&self.permalink(&params, shown.iter().map(|e| e.recorded_at)));
        text
    }

    /// A command that was not understood, with the usage it was meant to follow.
    pub fn parse_error(&self, error: &ParseError) -> String {
        match error {
            ParseError::Empty => format!("Say a command; {} lists them.", self.code("help")),
            ParseError::Unknown {
                word,
                did_you_mean: Some(verb),
            } => format!(
                "I don't know {}. Did you mean {}? Usage: {}",
                self.code(word),
                self.code(verb),
                self.text(usage(verb))
            ),
            ParseError::Unknown { word, .. } => {
                format!("I don't know {}. {}", self.code(word), self.help())
            }
            other => self.text(other.to_string()),
        }
    }

    pub fn help(&self) -> String {
        let mut text = String::from("Commands:");
        for (_, line) in USAGE {
            let _ = write!(text, "\n• {}", self.text(line));
        }
        text
    }

    pub fn already_recorded(&self) -> String {
        "Already recorded: this message was delivered before.".to_string()
    }

    /// A reminder, posted in the release's thread after the mentions of whom it is for.
    pub fn reminder(&self, due: &Due, now: DateTime<Utc>) -> String {
        let ticket = &due.ticket;
        let t = self.ticket(ticket);
        let requester = self.person(&due.requester);
        let waited = elapsed(due.since, now);
        let accept = self.code(format!("accept {ticket}"));
        let reject = self.code(format!("reject {ticket} <reason>"));
        let finish = self.code(format!("dep finish {ticket}"));
        let rollback = self.code(format!("dep rollback {ticket} <reason>"));
        match due.kind {
            ReminderKind::Approval => format!(
                "{t} by {requester} has waited {waited} for approval. {accept} or {reject}."
            ),
            ReminderKind::Escalation => format!(
                "{t} by {requester} has waited {waited} for approval and nobody has answered. \
                 Please {accept} or {reject}."
            ),
            ReminderKind::OverdueDeployment => format!(
                "The deployment of {t} has been running for {waited}, longer than expected. \
                 Finish it with {finish} or roll back with {rollback}."
            ),
            ReminderKind::StaleLock => {
                let locks: Vec<String> = due.locks.iter().map(|l| self.lock(l)).collect();
                format!(
                    "Stale lock: the deployment of {t} has held {} since {} ({waited}). \
                     Others cannot deploy until it finishes ({finish}) or rolls back \
                     ({rollback}), or an admin takes it over ({}).",
                    and_list(&locks),
                    time(due.since),
                    self.code(format!("dep takeover {ticket} <reason>"))
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
            self.ticket(freed),
            self.ticket(ticket)
        );
        if item.waiting_for.is_empty() {
            let _ = write!(
                text,
                " You can {} now.",
                self.code(format!("dep start {ticket}"))
            );
        } else {
            let _ = write!(
                text,
                " {} still waits for {}.",
                self.ticket(ticket),
                self.waiting_list(&item.waiting_for)
            );
        }
        text
    }

    /// A notice: to the approvers or admins, a call to act; to a requester, what someone did to
    /// their release.
    pub fn notice(&self, notice: &Notice) -> String {
        let Some(ticket) = notice.event.ticket() else {
            return String::new();
        };
        let link = self.ticket(ticket);
        let to_role = !matches!(notice.to, Audience::Person(_));
        match &notice.event {
            Event::ReleaseRequested { requester, .. } => format!(
                "Release {link} by {} waits for your approval: press {} or {}.",
                self.person(requester),
                self.markup.button("Accept"),
                self.markup.button("Reject")
            ),
            Event::ReleaseApproved { .. } if to_role => format!(
                "Release {link} is accepted and needs an admin: press {}.",
                self.markup.button("I'm here")
            ),
            Event::ReleaseApproved { approver, .. } => {
                format!("{} accepted your release {link}.", self.person(approver))
            }
            Event::ReleaseRejected {
                approver, reason, ..
            } => format!(
                "{} rejected your release {link}: {}",
                self.person(approver),
                self.text(reason)
            ),
            Event::AdminJoined { admin, .. } => format!(
                "Admin found: {} joins your release {link}.",
                self.person(admin)
            ),
            Event::DeploymentStarted { by, .. } => format!(
                "Deployment of your release {link} started by {}.",
                self.person(by)
            ),
            Event::DeploymentFinished { by, .. } => format!(
                "Deployment of your release {link} finished by {}.",
                self.person(by)
            ),
            Event::DeploymentRolledBack { by, reason, .. } => format!(
                "Deployment of your release {link} rolled back by {}: {}",
                self.person(by),
                self.text(reason)
            ),
            Event::DeploymentAbandoned {
                by,
                reason,
                proposed_by,
                ..
            } => {
                let who = match proposed_by {
                    Some(first) => format!("{} and {}", self.person(first), self.person(by)),
                    None => self.person(by),
                };
                format!(
                    "Deployment of your release {link} was taken over by {who}; its locks are \
                     free, check what it left half-done. Reason: {}",
                    self.text(reason)
                )
            }
            Event::TakeoverProposed {
                ticket, by, reason, ..
            } if to_role => format!(
                "{} proposes to take over the deployment of {link}; confirm with {}. Reason: {}",
                self.person(by),
                self.code(format!("dep takeover {ticket} --force")),
                self.text(reason)
            ),
            Event::TakeoverProposed { by, reason, .. } => format!(
                "{} proposes to take over the deployment of your release {link}: {}",
                self.person(by),
                self.text(reason)
            ),
            // `notices` makes none for other events.
            _ => String::new(),
        }
    }

    fn waiting_list(&self, waiting: &[Waiting]) -> String {
        let what: Vec<String> = waiting.iter().map(|w| self.waiting(w)).collect();
        and_list(&what)
    }

    fn waiting(&self, waiting: &Waiting) -> String {
        match waiting {
            Waiting::Approval => "approval".to_string(),
            Waiting::Admin => "an admin".to_string(),
            Waiting::Freeze => "the freeze to end".to_string(),
            Waiting::Lock { lock, ticket } => match lock {
                LockKey::Service(s) => format!(
                    "the {} lock (held by {})",
                    self.text(s),
                    self.ticket(ticket)
                ),
                LockKey::Group(g) => format!(
                    "the {} group lock (held by {})",
                    self.text(g),
                    self.ticket(ticket)
                ),
            },
            Waiting::Turn { ahead, over } => format!(
                "its turn (after {}, for {})",
                self.ticket(ahead),
                self.turn_over(over)
            ),
        }
    }

    /// Who may second a forced takeover: the people of the role.
    fn second(
        &self,
        role: Role,
        admins: &BTreeSet<UserId>,
        approvers: &BTreeSet<UserId>,
    ) -> String {
        match role {
            Role::Admin => format!("an admin ({})", self.people(admins, "none configured")),
            Role::Approver => format!(
                "an approver ({})",
                self.people(approvers, "none configured")
            ),
            _ => "an admin or an approver".to_string(),
        }
    }

    /// What a turn is over: `billing`, or `the backend-core group`.
    fn turn_over(&self, over: &LockKey) -> String {
        match over {
            LockKey::Service(s) => self.text(s),
            LockKey::Group(g) => format!("the {} group", self.text(g)),
        }
    }

    fn lock(&self, lock: &LockKey) -> String {
        match lock {
            LockKey::Service(s) => format!("the {} lock", self.text(s)),
            LockKey::Group(g) => format!("the {} group lock", self.text(g)),
        }
    }

    fn scope<T: AsRef<str>>(&self, services: Option<&[T]>) -> String {
        services.map_or("all services".to_string(), |s| self.list(s))
    }

    /// Names, as they are: `a, b`.
    fn list<T: AsRef<str>>(&self, items: &[T]) -> String {
        items
            .iter()
            .map(|i| self.text(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Any one of `set` will do: `alice`, `alice or bob`, `alice, bob or carol`.
    fn people(&self, set: &BTreeSet<UserId>, none: &str) -> String {
        let names: Vec<String> = set.iter().map(|p| self.person(p)).collect();
        match names.split_last() {
            None => none.to_string(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

fn tracker_check_text(check: TrackerCheck) -> &'static str {
    match check {
        TrackerCheck::Exists => "that the ticket exists",
        TrackerCheck::Status => "its status",
        TrackerCheck::FixVersion => "a fix version",
        TrackerCheck::Assignee => "an assignee",
        TrackerCheck::IssueType => "its type",
        TrackerCheck::Label => "a label",
    }
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Approver => "an approver",
        Role::Admin => "an admin",
        Role::RequesterOrAdmin => "the requester or an admin",
        Role::RequesterOrApprover => "the requester or an approver",
        Role::AdminOrApprover => "an admin or an approver",
    }
}

fn status_text(status: ReleaseStatus) -> &'static str {
    match status {
        ReleaseStatus::Requested => "requested",
        ReleaseStatus::Accepted => "accepted",
        ReleaseStatus::Deploying => "deploying",
    }
}

fn kind_text(kind: ReminderKind) -> &'static str {
    match kind {
        ReminderKind::Approval => "approval",
        ReminderKind::Escalation => "escalation",
        ReminderKind::OverdueDeployment => "overdue deployment",
        ReminderKind::StaleLock => "stale lock",
    }
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// All of `items`: `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// How a release ended, or `deploying` while it has not.
fn outcome_word(outcome: Option<DeploymentOutcome>) -> &'static str {
    match outcome {
        None => "deploying",
        Some(DeploymentOutcome::Finished) => "finished",
        Some(DeploymentOutcome::RolledBack) => "rolled back",
        Some(DeploymentOutcome::Abandoned) => "taken over",
        Some(DeploymentOutcome::Cancelled) => "cancelled",
        Some(DeploymentOutcome::Rejected) => "rejected",
    }
}

/// How long from `since` to `now`, to the minute: `45 min`, `1 h 5 min`, `2 d 3 h`.
fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    minutes((now - since).num_minutes().max(0))
}

/// A length of time in seconds, as `elapsed` says it, and under a minute in seconds.
pub fn span(seconds: i64) -> String {
    if seconds < 60 {
        format!("{} s", seconds.max(0))
    } else {
        minutes(seconds / 60)
    }
}

fn minutes(minutes: i64) -> String {
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}
