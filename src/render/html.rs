//! HTML, for the web page: everything escaped, a ticket as a link to the tracker, a person and
//! a command in their own elements so the page can style them. The page shows the lines of a
//! reply with `white-space: pre-line`, so line breaks stay as they are.

use super::Markup;
use crate::domain::{TicketKey, UserGroupId, UserId};

#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl Markup for Html {
    fn text(&self, text: &str) -> String {
        escape(text)
    }

    fn ticket(&self, ticket: &TicketKey, link: Option<&str>) -> String {
        match link {
            Some(url) => format!(
                r#"<a class="ticket" href="{}">{}</a>"#,
                escape(url),
                escape(ticket.as_str())
            ),
            None => format!(r#"<span class="ticket">{}</span>"#, escape(ticket.as_str())),
        }
    }

    fn person(&self, user: &UserId) -> String {
        format!(r#"<span class="person">{}</span>"#, escape(user.as_str()))
    }

    fn group(&self, group: &UserGroupId) -> String {
        format!(r#"<span class="group">{}</span>"#, escape(group.as_str()))
    }

    fn button(&self, label: &str) -> String {
        format!("<b>{}</b>", escape(label))
    }

    fn code(&self, command: &str) -> String {
        format!("<code>{}</code>", escape(command))
    }

    fn url(&self, url: &str) -> String {
        let url = escape(url);
        format!(r#"<a href="{url}">{url}</a>"#)
    }
}

/// Text made safe to put in HTML, in an element or an attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped_and_tickets_link_to_the_tracker() {
        let ticket = TicketKey::parse("PAY-1").unwrap();
        assert_eq!(
            Html.ticket(&ticket, Some("https://t/?a=1&b=PAY-1")),
            r#"<a class="ticket" href="https://t/?a=1&amp;b=PAY-1">PAY-1</a>"#
        );
        assert_eq!(Html.text("<script>&"), "&lt;script&gt;&amp;");
        assert_eq!(Html.code("here <PAY-1>"), "<code>here &lt;PAY-1&gt;</code>");
    }
}
