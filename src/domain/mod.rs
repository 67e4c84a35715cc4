//! The release process, pure: what people ask (`command`), what happened (`event`), what is
//! true now (`state`), the rules (`decide`), the config-driven rules (`policy`, `checks`), the
//! live queue (`queue`), what is overdue (`reminders`), what the tracker says of a ticket
//! (`tracker`) and how durations are written (`duration`). No I/O and no async here; time comes
//! in as data.

pub mod checks;
pub mod command;
pub mod decide;
pub mod duration;
pub mod event;
pub mod parse;
pub mod policy;
pub mod queue;
pub mod refusal;
pub mod reminders;
pub mod replay;
#[cfg(test)]
mod scenario;
pub mod state;
pub mod tracker;
pub mod types;

pub use command::{
    Command, HistoryFilter, Input, PolicyCause, PolicyProposal, Query, ReleaseRequest,
};
pub use decide::{decide, refused, start_blockers};
pub use duration::{DurationError, parse_duration};
pub use event::Event;
pub use parse::{ParseError, parse};
pub use policy::{ConflictGroup, Policy};
pub use queue::{QueueItem, Waiting, queue};
pub use refusal::{CheckFailure, Refusal, Role};
pub use reminders::{Due, ReminderSettings};
pub use state::State;
pub use tracker::{TicketInTracker, TrackerFinding, TrackerRules};
pub use types::{
    GroupName, LockKey, ParseValueError, Reason, ReleaseStatus, ReminderKind, RoleEntry,
    ServiceName, TicketKey, UserGroupId, UserId, WikiLink,
};
