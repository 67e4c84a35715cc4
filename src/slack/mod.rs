//! The Slack front: Slack's deliveries in (`inbound`), the answer to the person (`front`), the
//! release messages kept as a projection of the ledger (`presenter`, with what was shown
//! recorded in `messages`), the Web API calls (`api`), the release message as Block Kit
//! (`blocks`), Slack's markup decoded into plain text (`markup`), who people are
//! (`directory`), where reminders go (`reminder_sink`), the App Home and the modals (`views`),
//! and what each delivery asks of the front (`interact`). The transports (HTTP in `crate::http`, Socket Mode in `socket`) only
//! acknowledge and hand an `Inbound` to `SlackFront::handle`. `App::build` assembles them.

pub mod api;
pub mod blocks;
pub mod directory;
pub mod error;
pub mod front;
pub mod inbound;
pub mod interact;
pub mod markup;
pub mod messages;
pub mod presenter;
pub mod reminder_sink;
pub mod socket;
pub mod views;

pub use error::SlackError;
pub use front::SlackFront;
pub use inbound::{Inbound, ReplyTo};
