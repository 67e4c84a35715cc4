//! What people ask the bot: commands that change the ledger, and queries that only read it.
//!
//! Both come out of one parser (`parse.rs`), so Slack, the CLI and HTTP accept the same text.

use chrono::{DateTime, Utc};

use super::policy::Policy;
use super::tracker::TrackerFinding;
use super::types::{Reason, ReminderKind, ServiceName, TicketKey, UserId, WikiLink};

/// A request for permission to release (`dobro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRequest {
    pub ticket: TicketKey,
    pub wiki: Option<WikiLink>,
    pub comment: String,
    /// `no_need_admin`: the requester says no admin has to join.
    pub no_need_admin: bool,
    /// `services=a,b`; when absent, config maps the ticket's project to services.
    pub services: Option<Vec<ServiceName>>,
    /// What the tracker said of the ticket, looked up at the edge before `decide` (by the bot,
    /// when a tracker is configured); `None` from the parser and when there is no tracker.
    pub tracker: Option<TrackerFinding>,
}

/// A command that, accepted or refused, is recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `dobro #TICKET <wiki link> <comment...> [no_need_admin] [services=a,b]`
    Request(ReleaseRequest),
    /// `accept TICKET`
    Accept { ticket: TicketKey },
    /// `reject TICKET <reason>`
    Reject { ticket: TicketKey, reason: Reason },
    /// `cancel TICKET`
    Cancel { ticket: TicketKey },
    /// `here TICKET`: an admin joins the release.
    Here { ticket: TicketKey },
    /// `dep start TICKET`
    Start { ticket: TicketKey },
    /// `dep finish TICKET`
    Finish { ticket: TicketKey },
    /// `dep rollback TICKET <reason>`
    Rollback { ticket: TicketKey, reason: Reason },
    /// `dep alive TICKET [within=10m]`: the deployment's runner is alive, and says so again
    /// within the duration (`dobrobot deploy` sends it while its command runs).
    Alive {
        ticket: TicketKey,
        within: chrono::Duration,
    },
    /// `dep takeover TICKET <reason>`: an admin ends a deployment that is stuck and frees its
    /// locks; refused while the deployment is younger than the policy's `takeover_after`.
    Takeover { ticket: TicketKey, reason: Reason },
    /// `dep takeover TICKET --force [<reason>]`: a takeover at any age, by two people. With a
    /// reason and no proposal pending it proposes one; said by a second person holding the role
    /// the first lacks (an approver and an admin together), it confirms the pending proposal.
    ForceTakeover {
        ticket: TicketKey,
        reason: Option<Reason>,
    },
    /// `freeze <reason> [services=a,b]`; no services freezes everything.
    Freeze {
        reason: Reason,
        services: Option<Vec<ServiceName>>,
    },
    /// `unfreeze`
    Unfreeze,
    /// A reminder, by the system (`domain::reminders`); no chat text parses to it.
    Remind {
        ticket: TicketKey,
        kind: ReminderKind,
    },
    /// The rules a process starts or reloads with, or the Slack directory's new view of the
    /// user groups: recorded (`PolicyChanged`) when they differ from the last recorded ones.
    /// By the system; no chat text parses to it.
    AdoptPolicy(Box<PolicyProposal>),
}

/// A policy to record, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProposal {
    pub policy: Policy,
    pub cause: PolicyCause,
    /// The SHA-256 of the config file it was read from; `None` without a file.
    pub config_hash: Option<String>,
    /// The host and process id of the process that records it.
    pub host: String,
    pub process: u32,
}

/// Why a policy is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyCause {
    /// A process started with it.
    Start,
    /// A running process read its config again (SIGHUP).
    Reload,
    /// The Slack directory listed the user groups' members anew.
    Directory,
}

impl Command {
    /// The ticket the command is about, for logs and spans.
    pub fn ticket(&self) -> Option<&TicketKey> {
        match self {
            Command::Request(r) => Some(&r.ticket),
            Command::Accept { ticket }
            | Command::Reject { ticket, .. }
            | Command::Cancel { ticket }
            | Command::Here { ticket }
            | Command::Start { ticket }
            | Command::Finish { ticket }
            | Command::Rollback { ticket, .. }
            | Command::Alive { ticket, .. }
            | Command::Takeover { ticket, .. }
            | Command::ForceTakeover { ticket, .. }
            | Command::Remind { ticket, .. } => Some(ticket),
            Command::Freeze { .. } | Command::Unfreeze | Command::AdoptPolicy(_) => None,
        }
    }

    /// The command's verb as people type it.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Request(_) => "dobro",
            Command::Accept { .. } => "accept",
            Command::Reject { .. } => "reject",
            Command::Cancel { .. } => "cancel",
            Command::Here { .. } => "here",
            Command::Start { .. } => "dep start",
            Command::Finish { .. } => "dep finish",
            Command::Rollback { .. } => "dep rollback",
            Command::Alive { .. } => "dep alive",
            Command::Takeover { .. } | Command::ForceTakeover { .. } => "dep takeover",
            Command::Freeze { .. } => "freeze",
            Command::Unfreeze => "unfreeze",
            Command::Remind { .. } => "remind",
            Command::AdoptPolicy(_) => "policy",
        }
    }

    /// Whether a refusal of the command is recorded (`CommandRefused`). A person's refused
    /// command is part of the audit history; a reminder refused because it is no longer due
    /// (the release moved on, another replica sent it) is not news, so it records nothing.
    pub fn records_refusal(&self) -> bool {
        !matches!(self, Command::Remind { .. } | Command::AdoptPolicy(_))
    }
}

/// Filters of `history`; every field narrows the listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub service: Option<ServiceName>,
    pub ticket: Option<TicketKey>,
    pub actor: Option<UserId>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A question that reads the ledger and records nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `queue`
    Queue,
    /// `who <service>`: who deployed the service, most recent first.
    Who { service: ServiceName },
    /// `history [service=S] [ticket=T] [actor=U] [type=E]`
    History(HistoryFilter),
    /// `suspects [at=TIME] [window=2h] [services=a,b]`: what ran on the services in the window
    /// before the time. The time is kept as typed: the front reads it with its clock.
    Suspects {
        at: Option<String>,
        window: Option<chrono::Duration>,
        services: Vec<ServiceName>,
    },
    /// `help`
    Help,
}

/// Everything the parser can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Command(Command),
    Query(Query),
}
