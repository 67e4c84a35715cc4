//! Plain text, for the CLI and logs: every part as it was typed, commands in backticks.

use super::Markup;
use crate::domain::{TicketKey, UserGroupId, UserId};

#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Markup for Plain {
    fn text(&self, text: &str) -> String {
        text.to_string()
    }

    fn ticket(&self, ticket: &TicketKey, _link: Option<&str>) -> String {
        ticket.to_string()
    }

    fn person(&self, user: &UserId) -> String {
        user.to_string()
    }

    fn group(&self, group: &UserGroupId) -> String {
        group.to_string()
    }

    fn button(&self, label: &str) -> String {
        format!("[{label}]")
    }

    fn code(&self, command: &str) -> String {
        format!("`{command}`")
    }

    fn url(&self, url: &str) -> String {
        url.to_string()
    }
}
