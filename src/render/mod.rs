//! Answers as words, once per medium. The wording (`words`) is written once and says where a
//! ticket, a person, a command to type or a person's own text goes; the medium (`Markup`)
//! writes each of them its own way: plain text for the CLI, Slack mrkdwn (tracker links,
//! mentions of people and user groups), HTML for the web page. A link is written where the
//! wording names the thing, never found again in finished prose.

mod html;
mod plain;
pub mod policy;
pub mod report;
mod slack;
pub mod timeline;
pub mod whatif;
mod words;

use crate::domain::{TicketKey, UserGroupId, UserId};

pub use html::{Html, escape as escape_html};
pub use plain::Plain;
pub use slack::Slack;
pub use words::{Renderer, span};

/// How a medium writes the typed parts of a reply.
pub trait Markup: Send + Sync {
    /// Text a person typed (a comment, a reason) or the bot's own words: escaped as the medium
    /// needs.
    fn text(&self, text: &str) -> String;
    /// A ticket; `link` is its page in the tracker, when one is configured.
    fn ticket(&self, ticket: &TicketKey, link: Option<&str>) -> String;
    /// A person (a Slack user id, or a name from the config or the CLI).
    fn person(&self, user: &UserId) -> String;
    /// A Slack user group a role names.
    fn group(&self, group: &UserGroupId) -> String;
    /// A button of the medium the person is to press.
    fn button(&self, label: &str) -> String;
    /// A command to type, shown as code (nothing inside it is linked).
    fn code(&self, command: &str) -> String;
    /// A web address.
    fn url(&self, url: &str) -> String;
}
