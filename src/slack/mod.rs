//! The Slack front: Slack's deliveries in (`inbound`), the work after the acknowledgement
//! (`front`), the Web API calls (`api`), the release message as Block Kit (`blocks`), where
//! each release's message is (`messages`), and who people are (`directory`). The transports
//! (HTTP in `crate::http`, Socket Mode in `socket`) only acknowledge and hand an `Inbound` to
//! `SlackFront::handle`.
//!
//! Besides answering people: reminders recorded in the ledger then posted in the release's
//! thread (`reminders`), DMs to those a lock held up when it frees (`waitlist`), and steps
//! recorded elsewhere (the CLI, another process) shown like Slack's own (`follow`).

pub mod api;
pub mod blocks;
pub mod directory;
pub mod error;
pub mod follow;
pub mod front;
pub mod inbound;
pub mod markup;
pub mod messages;
pub mod notify;
pub mod reminders;
pub mod socket;
pub mod waitlist;

pub use error::SlackError;
pub use follow::follow_ledger;
pub use front::SlackFront;
pub use inbound::{Inbound, ReplyTo};
