//! Slack mrkdwn: a ticket as a link to the tracker, a Slack user as a mention, a user group as
//! a group mention, everything typed by people with `&`, `<` and `>` escaped as Slack asks
//! (so that text cannot turn into a mention or a link of its own).

use super::Markup;
use crate::domain::{TicketKey, UserId};

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
        mention(user.as_str())
    }

    fn code(&self, command: &str) -> String {
        format!("`{command}`")
    }

    fn url(&self, url: &str) -> String {
        url.to_string()
    }
}

/// How a person or a configured role entry is written in a Slack message: `<@U…>` for a user
/// id, `<!subteam^S…>` for a user group, the name itself otherwise.
pub fn mention(entry: &str) -> String {
    if is_id(entry, &['S']) {
        format!("<!subteam^{entry}>")
    } else if is_id(entry, &['U', 'W']) {
        format!("<@{entry}>")
    } else {
        entry.to_string()
    }
}

/// A Slack id: one of `first`, then upper-case letters and digits.
fn is_id(entry: &str, first: &[char]) -> bool {
    let mut chars = entry.chars();
    chars.next().is_some_and(|c| first.contains(&c))
        && entry.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ids_become_mentions_and_names_stay() {
        assert_eq!(mention("U0BOB"), "<@U0BOB>");
        assert_eq!(mention("W0BOB"), "<@W0BOB>");
        assert_eq!(mention("S0ADMINS"), "<!subteam^S0ADMINS>");
        assert_eq!(mention("alice"), "alice");
        assert_eq!(mention("Ux"), "Ux");
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
    }
}
