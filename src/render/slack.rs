//! Slack mrkdwn: a ticket as a link to the tracker, a Slack user as a mention, a user group as
//! a group mention, everything typed by people with `&`, `<` and `>` escaped as Slack asks
//! (so that text cannot turn into a mention or a link of its own).

use super::Markup;
use crate::domain::{TicketKey, UserGroupId, UserId};

#[derive(Debug, Clone, Copy, Default)]
pub struct Slack;

impl Markup for Slack {
    fn text(&self, text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    fn ticket(&self, ticket: &TicketKey, link: Option<&str>) -> String {
        match link {
            Some(url) => format!("<{url}|{ticket}>"),
            None => ticket.to_string(),
        }
    }

    fn person(&self, user: &UserId) -> String {
        let id = user.as_str();
        let mut chars = id.chars();
        let slack_user = matches!(chars.next(), Some('U' | 'W'))
            && id.len() >= 3
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if slack_user {
            format!("<@{id}>")
        } else {
            id.to_string()
        }
    }

    fn group(&self, group: &UserGroupId) -> String {
        format!("<!subteam^{group}>")
    }

    fn button(&self, label: &str) -> String {
        format!("*{label}*")
    }

    /// Escaped like any text: Slack reads `<` as the start of a link or mention even
    /// between backticks.
    fn code(&self, command: &str) -> String {
        format!("`{}`", self.text(command))
    }

    /// Slack links a bare address; `&`, `<` and `>` in it are escaped as in any text.
    fn url(&self, url: &str) -> String {
        self.text(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ids_become_mentions_and_names_stay() {
        let person = |id: &str| Slack.person(&UserId::parse(id).unwrap());
        assert_eq!(person("U0BOB"), "<@U0BOB>");
        assert_eq!(person("W0BOB"), "<@W0BOB>");
        assert_eq!(person("alice"), "alice");
        assert_eq!(person("Ux"), "Ux");
        let group = UserGroupId::parse("S0ADMINS").unwrap();
        assert_eq!(Slack.group(&group), "<!subteam^S0ADMINS>");
    }

    #[test]
    fn typed_text_cannot_become_markup() {
        assert_eq!(Slack.text("a & <@U1> > b"), "a &amp; &lt;@U1&gt; &gt; b");
        let ticket = TicketKey::parse("PAY-1").unwrap();
        assert_eq!(
            Slack.ticket(&ticket, Some("https://t/browse/PAY-1")),
            "<https://t/browse/PAY-1|PAY-1>"
        );
        assert_eq!(Slack.ticket(&ticket, None), "PAY-1");
        assert_eq!(
            Slack.code("reject PAY-1 <reason>"),
            "`reject PAY-1 &lt;reason&gt;`"
        );
    }
}
