//! Slack's message markup, decoded into the plain text the command parser reads.
//!
//! Slack delivers what a person typed with its own escapes: mentions as `<@U123>` (older
//! clients `<@U123|name>`), links as `<https://x>` or `<https://x|title>`, channels as
//! `<#C1|name>`, and `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`. Only a raw `<` opens markup, so
//! the entities are decoded after the markup is read, never before: a typed `&lt;b&gt;` stays the
//! text `<b>`.
//!
//! The bot's own mention(s) in front of the command are Slack's addressing, not part of the
//! command, and are dropped. A mention anywhere else becomes `@U123`, the id the parser reads
//! as a user (`history actor=@U123`). A link with a title keeps both, as `[title](https://x)`:
//! the parser reads the link where one is wanted (the release notes of `dobro`) and the title
//! where text is (a comment, a reason), as a person sees it in Slack (a title holding `]`, which
//! that form cannot carry, gives way to the link). Any other markup becomes its title, or its
//! target when it has none.

/// Slack's text as plain text: see the module doc.
pub fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut leading = true;
    while let Some(open) = rest.find('<') {
        let before = &rest[..open];
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            break;
        };
        let inner = &after[..close];
        let next = &after[close + 1..];
        // A leading mention is the bot being addressed, if it stands as a word of its own.
        let own_word = next.is_empty() || next.starts_with(char::is_whitespace);
        if leading && before.trim().is_empty() && inner.starts_with('@') && own_word {
            rest = next;
            continue;
        }
        let before = if leading { before.trim_start() } else { before };
        out.push_str(&entities(before));
        leading = false;
        out.push_str(&span(inner));
        rest = next;
    }
    if leading {
        rest = rest.trim_start();
    }
    out.push_str(&entities(rest));
    out
}

/// One `<...>` span as plain text.
fn span(inner: &str) -> String {
    let (target, title) = match inner.split_once('|') {
        Some((target, title)) => (target, Some(title)),
        None => (inner, None),
    };
    let target = entities(target);
    if let Some(user) = target.strip_prefix('@') {
        return format!("@{user}");
    }
    match title {
        // The parser's titled links hold no `]` in the title; the link matters more.
        Some(title) if is_web_link(&target) && title.contains(']') => target,
        Some(title) if is_web_link(&target) => format!("[{}]({target})", entities(title.trim())),
        Some(title) => entities(title.trim()),
        None => target,
    }
}

fn is_web_link(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

fn entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        Command, Input, ParseError, Query, Reason, ReleaseRequest, ServiceName, TicketKey, UserId,
        WikiLink, parse,
    };

    fn command(slack: &str) -> Command {
        match parse(&decode(slack)) {
            Ok(Input::Command(command)) => command,
            other => panic!("`{slack}` gave {other:?}"),
        }
    }

    fn request(slack: &str) -> ReleaseRequest {
        match command(slack) {
            Command::Request(request) => request,
            other => panic!("`{slack}` gave {other:?}"),
        }
    }

    fn link(text: &str) -> Option<WikiLink> {
        Some(WikiLink::parse(text).unwrap())
    }

    #[test]
    fn markup_becomes_plain_text() {
        assert_eq!(decode("<@U0BOT> queue"), "queue");
        assert_eq!(
            decode("<@U0BOT|dobrobot>  <@U1> accept PAY-1"),
            "accept PAY-1"
        );
        assert_eq!(
            decode("dobro PAY-1 <https://wiki/x> cc <@U9> see <https://g/d|the board>"),
            "dobro PAY-1 https://wiki/x cc @U9 see [the board](https://g/d)"
        );
        assert_eq!(decode("fix &amp; ship a &lt; b"), "fix & ship a < b");
        assert_eq!(
            decode("&lt;https://x&gt;"),
            "<https://x>",
            "typed, not markup"
        );
        assert_eq!(decode("in <#C1|general> now"), "in general now");
        assert_eq!(decode("<https://x?a=1&amp;b=2>"), "https://x?a=1&b=2");
        assert_eq!(
            decode("<@U1>x queue"),
            "@U1x queue",
            "not a word of its own"
        );
        assert_eq!(decode("unclosed <https://x"), "unclosed <https://x");
    }

    #[test]
    fn slack_formatting_is_understood() {
        assert_eq!(
            request(
                "<@U123> dobro #pay-1 <https://wiki/x|Release notes> fix &amp; ship \
                 no_need_admin services=billing,api"
            ),
            ReleaseRequest {
                ticket: TicketKey::parse("PAY-1").unwrap(),
                wiki: link("https://wiki/x"),
                comment: "fix & ship".to_string(),
                no_need_admin: true,
                services: Some(vec![
                    ServiceName::parse("billing").unwrap(),
                    ServiceName::parse("api").unwrap()
                ]),
                tracker: None,
            }
        );
        assert_eq!(
            command("<@U123|dobrobot> <@U456> accept PAY-1"),
            Command::Accept {
                ticket: TicketKey::parse("PAY-1").unwrap()
            }
        );
        let bare =
            request("dobro PAY-1 <https://wiki/x> cc <@U9> see <https://grafana/d|the board>");
        assert_eq!(bare.wiki, link("https://wiki/x"));
        assert_eq!(bare.comment, "cc @U9 see the board");
    }

    #[test]
    fn an_escaped_angle_bracket_is_text_not_markup() {
        let request = request("dobro PAY-1 https://wiki/x a &lt; b no_need_admin services=web");
        assert_eq!(request.comment, "a < b");
        assert!(request.no_need_admin);
        assert_eq!(
            request.services,
            Some(vec![ServiceName::parse("web").unwrap()])
        );
    }

    #[test]
    fn titles_are_text_and_mentions_are_users() {
        assert_eq!(
            command("dep rollback PAY-1 error rate <https://grafana/d|up>"),
            Command::Rollback {
                ticket: TicketKey::parse("PAY-1").unwrap(),
                reason: Reason::parse("error rate up").unwrap(),
            }
        );
        let history = parse(&decode("history actor=<@U01|alice>"));
        let Ok(Input::Query(Query::History(filter))) = history else {
            panic!("{history:?}");
        };
        assert_eq!(filter.actor, Some(UserId::parse("U01").unwrap()));
    }

    #[test]
    fn only_mentions_say_nothing() {
        for text in ["", "   ", "<@U123>", "<@U123>  <@U456|bot> \n"] {
            assert_eq!(parse(&decode(text)), Err(ParseError::Empty), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decoding_never_panics(text in any::<String>()) {
            let _ = parse(&decode(&text));
        }

        #[test]
        fn decoding_slack_like_text_never_panics(
            text in "(<[@#!]?[A-Za-z0-9:/.|&; ]{0,12}>|&amp;|&lt;|&gt;|[a-z ]{0,6}|[<>|\\[\\]()]){0,10}"
        ) {
            let _ = parse(&decode(&text));
        }
    }
}
