//! Chat text -> a typed `Input`. The one place where the command syntax lives.
//!
//! Takes plain text, as a person types it: any case, `#` optional before a ticket, extra
//! spaces. A link may carry a title, written `[title](https://wiki/x)` (one token even when the
//! title has spaces): the link counts where a link is wanted (the release notes), the title
//! where text is (a comment, a reason). That is how the Slack front writes Slack's titled links
//! when it decodes its markup (`slack::markup`), which is Slack's business, not the parser's.
//! Never panics: a proptest feeds it arbitrary strings.

use thiserror::Error;

use super::command::{Command, HistoryFilter, Input, Query, ReleaseRequest};
use super::duration::parse_duration;
use super::types::{ParseValueError, Reason, ServiceName, TicketKey, UserId, WikiLink};

/// Every command's usage, as the help reply lists them.
pub const USAGE: &[(&str, &str)] = &[
    (
        "dobro",
        "dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]",
    ),
    ("queue", "queue"),
    ("accept", "accept TICKET"),
    ("reject", "reject TICKET <reason>"),
    ("cancel", "cancel TICKET"),
    ("here", "here TICKET"),
    ("dep start", "dep start TICKET"),
    ("dep finish", "dep finish TICKET"),
    ("dep rollback", "dep rollback TICKET <reason>"),
    ("dep alive", "dep alive TICKET [within=10m]"),
    ("dep takeover", "dep takeover TICKET [--force] <reason>"),
    ("freeze", "freeze <reason> [services=a,b]"),
    ("unfreeze", "unfreeze"),
    ("who", "who <service>"),
    (
        "history",
        "history [service=S] [ticket=T] [actor=U] [type=EventType]",
    ),
    ("suspects", "suspects [at=TIME] [window=2h] [services=a,b]"),
    ("help", "help"),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("say a command; try `help`")]
    Empty,
    #[error("unknown command `{word}`")]
    Unknown {
        word: String,
        did_you_mean: Option<&'static str>,
    },
    #[error("`{verb}` is missing {what}; usage: {}", usage(verb))]
    Missing {
        verb: &'static str,
        what: &'static str,
    },
    #[error("{error}; usage: {}", usage(verb))]
    BadValue {
        verb: &'static str,
        error: ParseValueError,
    },
    #[error("`{verb}` does not take `{extra}`; usage: {}", usage(verb))]
    Unexpected { verb: &'static str, extra: String },
}

impl ParseError {
    /// The usage line of the command the text was meant to be, if known.
    pub fn usage(&self) -> Option<&'static str> {
        match self {
            ParseError::Missing { verb, .. }
            | ParseError::BadValue { verb, .. }
            | ParseError::Unexpected { verb, .. } => Some(usage(verb)),
            ParseError::Unknown {
                did_you_mean: Some(verb),
                ..
            } => Some(usage(verb)),
            ParseError::Empty | ParseError::Unknown { .. } => None,
        }
    }
}

/// The usage line of a verb from [`USAGE`] (`dep` alone: all three deployment commands).
pub fn usage(verb: &str) -> &'static str {
    if verb == "dep" {
        return "dep start|finish TICKET, dep rollback TICKET <reason>, dep alive TICKET \
                [within=10m], dep takeover TICKET [--force] <reason>";
    }
    USAGE
        .iter()
        .find(|(v, _)| *v == verb)
        .map(|(_, u)| *u)
        .unwrap_or("help")
}

pub fn parse(text: &str) -> Result<Input, ParseError> {
    let tokens = tokenize(text);
    let Some(first) = tokens.first() else {
        return Err(ParseError::Empty);
    };
    let word = first.to_lowercase();
    let args = &tokens[1..];
    match word.as_str() {
        "dobro" => request(args).map(|r| Input::Command(Command::Request(r))),
        "queue" | "q" => no_args("queue", args).map(|()| Input::Query(Query::Queue)),
        "accept" => ticket_only("accept", args).map(|ticket| cmd(Command::Accept { ticket })),
        "cancel" => ticket_only("cancel", args).map(|ticket| cmd(Command::Cancel { ticket })),
        "here" => ticket_only("here", args).map(|ticket| cmd(Command::Here { ticket })),
        "reject" => ticket_and_reason("reject", args)
            .map(|(ticket, reason)| cmd(Command::Reject { ticket, reason })),
        "dep" | "deploy" => deployment(first, args),
        "freeze" => freeze(args),
        "unfreeze" => no_args("unfreeze", args).map(|()| cmd(Command::Unfreeze)),
        "who" => who(args),
        "history" => history(args),
        "suspects" => suspects(args),
        "help" | "?" => Ok(Input::Query(Query::Help)),
        _ => Err(ParseError::Unknown {
            did_you_mean: did_you_mean(&word),
            word: first.to_string(),
        }),
    }
}

fn cmd(command: Command) -> Input {
    Input::Command(command)
}

fn request(args: &[String]) -> Result<ReleaseRequest, ParseError> {
    const VERB: &str = "dobro";
    let (ticket, rest) = leading_ticket(VERB, args)?;
    let mut wiki = None;
    let mut no_need_admin = false;
    let mut services = None;
    let mut comment = Vec::new();
    for token in rest {
        if token.eq_ignore_ascii_case("no_need_admin") {
            no_need_admin = true;
        } else if let Some(list) = key_value(token, "services") {
            services = Some(service_list(VERB, list)?);
        } else if wiki.is_none()
            && let Ok(link) = WikiLink::parse(titled_link(token).map_or(token, |(_, link)| link))
        {
            wiki = Some(link);
        } else {
            comment.push(display_text(token));
        }
    }
    Ok(ReleaseRequest {
        ticket,
        wiki,
        comment: comment.join(" "),
        no_need_admin,
        services,
        tracker: None,
    })
}

fn deployment(word: &str, args: &[String]) -> Result<Input, ParseError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(ParseError::Missing {
            verb: "dep",
            what: "`start`, `finish`, `rollback`, `alive` or `takeover` and the ticket",
        });
    };
    match sub.to_lowercase().as_str() {
        "start" => ticket_only("dep start", rest).map(|ticket| cmd(Command::Start { ticket })),
        "finish" | "done" => {
            ticket_only("dep finish", rest).map(|ticket| cmd(Command::Finish { ticket }))
        }
        "rollback" => ticket_and_reason("dep rollback", rest)
            .map(|(ticket, reason)| cmd(Command::Rollback { ticket, reason })),
        "alive" => alive(rest),
        "takeover" => takeover(rest),
        other => Err(ParseError::Unknown {
            word: format!("{word} {sub}"),
            did_you_mean: did_you_mean(&format!("dep {other}")).or(Some("dep start")),
        }),
    }
}

/// How long a runner's sign of life holds when `dep alive` does not say.
pub const ALIVE_WITHIN: chrono::Duration = chrono::Duration::minutes(10);

fn alive(args: &[String]) -> Result<Input, ParseError> {
    const VERB: &str = "dep alive";
    let (ticket, rest) = leading_ticket(VERB, args)?;
    let within = match rest {
        [] => ALIVE_WITHIN,
        [token] => match key_value(token, "within").map(parse_duration) {
            Some(Ok(within)) if within > chrono::Duration::zero() => within,
            Some(_) => {
                return Err(ParseError::BadValue {
                    verb: VERB,
                    error: ParseValueError::Duration(token.to_string()),
                });
            }
            None => {
                return Err(ParseError::Unexpected {
                    verb: VERB,
                    extra: token.to_string(),
                });
            }
        },
        [_, extra, ..] => {
            return Err(ParseError::Unexpected {
                verb: VERB,
                extra: extra.to_string(),
            });
        }
    };
    Ok(cmd(Command::Alive { ticket, within }))
}

/// `dep takeover TICKET [--force] <reason>`; `--force` may also come before the ticket. Forced,
/// the reason may be left out: that confirms a proposal (`decide` says whether there is one).
fn takeover(args: &[String]) -> Result<Input, ParseError> {
    const VERB: &str = "dep takeover";
    let is_force = |token: &String| token.eq_ignore_ascii_case("--force");
    let (force, args) = match args.split_first() {
        Some((first, rest)) if is_force(first) => (true, rest),
        _ => (false, args),
    };
    let (ticket, rest) = leading_ticket(VERB, args)?;
    let (force, rest) = match rest.split_first() {
        Some((first, after)) if is_force(first) => (true, after),
        _ => (force, rest),
    };
    let words: Vec<String> = rest.iter().map(|t| display_text(t)).collect();
    let reason = Reason::parse(&words.join(" ")).ok();
    let command = match (force, reason) {
        (true, reason) => Command::ForceTakeover { ticket, reason },
        (false, Some(reason)) => Command::Takeover { ticket, reason },
        (false, None) => {
            return Err(ParseError::Missing {
                verb: VERB,
                what: "a reason",
            });
        }
    };
    Ok(cmd(command))
}

fn freeze(args: &[String]) -> Result<Input, ParseError> {
    const VERB: &str = "freeze";
    let mut services = None;
    let mut words = Vec::new();
    for token in args {
        match key_value(token, "services") {
            Some(list) => services = Some(service_list(VERB, list)?),
            None => words.push(display_text(token)),
        }
    }
    let reason = Reason::parse(&words.join(" ")).map_err(|_| ParseError::Missing {
        verb: VERB,
        what: "a reason",
    })?;
    Ok(cmd(Command::Freeze { reason, services }))
}

fn who(args: &[String]) -> Result<Input, ParseError> {
    const VERB: &str = "who";
    match args {
        [] => Err(ParseError::Missing {
            verb: VERB,
            what: "the service",
        }),
        [service] => ServiceName::parse(service)
            .map(|service| Input::Query(Query::Who { service }))
            .map_err(|error| ParseError::BadValue { verb: VERB, error }),
        [_, extra, ..] => Err(ParseError::Unexpected {
            verb: VERB,
            extra: extra.clone(),
        }),
    }
}

fn history(args: &[String]) -> Result<Input, ParseError> {
    const VERB: &str = "history";
    let bad = |error| ParseError::BadValue { verb: VERB, error };
    let mut filter = HistoryFilter::default();
    for token in args {
        if let Some(v) = key_value(token, "service") {
            filter.service = Some(ServiceName::parse(v).map_err(bad)?);
        } else if let Some(v) = key_value(token, "ticket") {
            filter.ticket = Some(TicketKey::parse(v).map_err(bad)?);
        } else if let Some(v) = key_value(token, "actor") {
            filter.actor = Some(UserId::parse(v).map_err(bad)?);
        } else if let Some(v) = key_value(token, "type") {
            filter.event_type = Some(v.to_string());
        } else {
            return Err(ParseError::Unexpected {
                verb: VERB,
                extra: token.clone(),
            });
        }
    }
    Ok(Input::Query(Query::History(filter)))
}

fn suspects(args: &[String]) -> Result<Input, ParseError> {
    const VERB: &str = "suspects";
    let bad = |error| ParseError::BadValue { verb: VERB, error };
    let (mut at, mut window, mut services) = (None, None, Vec::new());
    for token in args {
        if let Some(v) = key_value(token, "at") {
            at = Some(v.to_string());
        } else if let Some(v) = key_value(token, "window") {
            let duration =
                parse_duration(v).map_err(|_| bad(ParseValueError::Duration(v.to_string())))?;
            window = Some(duration);
        } else if let Some(list) =
            key_value(token, "services").or_else(|| key_value(token, "service"))
        {
            services = service_list(VERB, list)?;
        } else {
            return Err(ParseError::Unexpected {
                verb: VERB,
                extra: token.clone(),
            });
        }
    }
    Ok(Input::Query(Query::Suspects {
        at,
        window,
        services,
    }))
}

fn no_args(verb: &'static str, args: &[String]) -> Result<(), ParseError> {
    match args.first() {
        None => Ok(()),
        Some(extra) => Err(ParseError::Unexpected {
            verb,
            extra: extra.clone(),
        }),
    }
}

fn ticket_only(verb: &'static str, args: &[String]) -> Result<TicketKey, ParseError> {
    match args {
        [] => Err(ParseError::Missing {
            verb,
            what: "the ticket",
        }),
        [ticket] => TicketKey::parse(ticket).map_err(|error| ParseError::BadValue { verb, error }),
        [_, extra, ..] => Err(ParseError::Unexpected {
            verb,
            extra: extra.clone(),
        }),
    }
}

/// The ticket a command starts with, and the words after it.
fn leading_ticket<'a>(
    verb: &'static str,
    args: &'a [String],
) -> Result<(TicketKey, &'a [String]), ParseError> {
    let (ticket, rest) = args.split_first().ok_or(ParseError::Missing {
        verb,
        what: "the ticket",
    })?;
    let ticket = TicketKey::parse(ticket).map_err(|error| ParseError::BadValue { verb, error })?;
    Ok((ticket, rest))
}

fn ticket_and_reason(
    verb: &'static str,
    args: &[String],
) -> Result<(TicketKey, Reason), ParseError> {
    let (ticket, rest) = leading_ticket(verb, args)?;
    let words: Vec<String> = rest.iter().map(|t| display_text(t)).collect();
    let reason = Reason::parse(&words.join(" ")).map_err(|_| ParseError::Missing {
        verb,
        what: "a reason",
    })?;
    Ok((ticket, reason))
}

fn service_list(verb: &'static str, list: &str) -> Result<Vec<ServiceName>, ParseError> {
    let services = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(ServiceName::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ParseError::BadValue { verb, error })?;
    if services.is_empty() {
        return Err(ParseError::Missing {
            verb,
            what: "a service after `services=`",
        });
    }
    Ok(services)
}

fn key_value<'t>(token: &'t str, key: &str) -> Option<&'t str> {
    let (k, v) = token.split_once('=')?;
    k.eq_ignore_ascii_case(key).then_some(v)
}

/// Splits on white space, keeping a titled link (`[a title](https://x)`) whole.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = titled_link_len(rest)
            .unwrap_or_else(|| rest.find(char::is_whitespace).unwrap_or(rest.len()));
        tokens.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    tokens
}

/// The length of the titled link `text` starts with, if it does: `[`, a title without `]`,
/// `](`, then a link up to the next white space, ending with `)`. (A title may hold spaces, so
/// without the rule on `]` a comment like `[wip] see [docs](https://d)` would be one token.)
fn titled_link_len(text: &str) -> Option<usize> {
    let after_open = text.strip_prefix('[')?;
    let title_end = after_open.find(']')?;
    if !after_open[title_end..].starts_with("](") {
        return None;
    }
    let link_start = 1 + title_end + 2;
    let link_len = text[link_start..]
        .find(char::is_whitespace)
        .unwrap_or(text.len() - link_start);
    let end = link_start + link_len;
    (link_len > 1 && text[..end].ends_with(')')).then_some(end)
}

/// A titled link token's title and link.
fn titled_link(token: &str) -> Option<(&str, &str)> {
    if titled_link_len(token) != Some(token.len()) {
        return None;
    }
    let (title, link) = token[1..token.len() - 1].split_once("](")?;
    Some((title, link))
}

/// How a token reads to a person: a titled link is its title.
fn display_text(token: &str) -> String {
    match titled_link(token) {
        Some((title, _)) => title.trim().to_string(),
        None => token.to_string(),
    }
}

fn did_you_mean(word: &str) -> Option<&'static str> {
    USAGE
        .iter()
        .map(|(verb, _)| *verb)
        .map(|verb| (verb, edit_distance(word, verb)))
        .filter(|(verb, d)| *d <= 2.max(verb.len() / 4))
        .min_by_key(|(_, d)| *d)
        .map(|(verb, _)| verb)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t(text: &str) -> TicketKey {
        TicketKey::parse(text).unwrap()
    }

    fn s(text: &str) -> ServiceName {
        ServiceName::parse(text).unwrap()
    }

    fn r(text: &str) -> Reason {
        Reason::parse(text).unwrap()
    }

    fn link(text: &str) -> Option<WikiLink> {
        Some(WikiLink::parse(text).unwrap())
    }

    fn command(text: &str) -> Command {
        match parse(text) {
            Ok(Input::Command(command)) => command,
            other => panic!("`{text}` gave {other:?}"),
        }
    }

    fn request(text: &str) -> ReleaseRequest {
        match command(text) {
            Command::Request(request) => request,
            other => panic!("`{text}` gave {other:?}"),
        }
    }

    #[test]
    fn the_seed_syntax_works_as_written() {
        assert_eq!(
            request("dobro #PAY-1 https://wiki/x some comment"),
            ReleaseRequest {
                ticket: t("PAY-1"),
                wiki: link("https://wiki/x"),
                comment: "some comment".to_string(),
                no_need_admin: false,
                services: None,
                tracker: None,
            }
        );
        assert_eq!(parse("queue"), Ok(Input::Query(Query::Queue)));
        assert_eq!(
            command("accept PAY-1"),
            Command::Accept { ticket: t("PAY-1") }
        );
        assert_eq!(command("here PAY-1"), Command::Here { ticket: t("PAY-1") });
        assert_eq!(
            command("dep start PAY-1"),
            Command::Start { ticket: t("PAY-1") }
        );
        assert_eq!(
            command("dep finish PAY-1"),
            Command::Finish { ticket: t("PAY-1") }
        );
    }

    #[test]
    fn the_seed_no_need_admin_goes_anywhere_after_the_ticket() {
        for text in [
            "dobro #PAY-1 no_need_admin https://wiki/x some comment",
            "dobro #PAY-1 https://wiki/x no_need_admin some comment",
            "dobro #PAY-1 https://wiki/x some comment no_need_admin",
        ] {
            let request = request(text);
            assert!(request.no_need_admin, "{text}");
            assert_eq!(request.comment, "some comment", "{text}");
            assert_eq!(request.wiki, link("https://wiki/x"), "{text}");
        }
    }

    #[test]
    fn a_titled_link_is_a_link_or_its_title() {
        let request = request(
            "dobro #pay-1 [Release notes](https://wiki/x) fix & ship see [the board](https://g/d) \
             no_need_admin services=billing,api",
        );
        assert_eq!(
            request,
            ReleaseRequest {
                ticket: t("PAY-1"),
                wiki: link("https://wiki/x"),
                comment: "fix & ship see the board".to_string(),
                no_need_admin: true,
                services: Some(vec![s("billing"), s("api")]),
                tracker: None,
            }
        );
        let plain = self::request("dobro PAY-1 https://wiki/x a < b [not a link] (really)");
        assert_eq!(plain.comment, "a < b [not a link] (really)");
        let wip = self::request("dobro PAY-1 [wip] see [docs](https://d)");
        assert_eq!(
            (wip.wiki, wip.comment.as_str()),
            (link("https://d"), "[wip] see")
        );
        let odd = self::request("dobro PAY-1 [x](https://y)z [](https://e) [t](u v)");
        assert_eq!(odd.wiki, link("https://e"));
        assert_eq!(odd.comment, "[x](https://y)z [t](u v)");
    }

    #[test]
    fn case_and_spacing_do_not_matter() {
        assert_eq!(
            request(
                "  DOBRO   #pay-1\tHTTPS://WIKI/X   Big   Change  NO_NEED_ADMIN SERVICES=Billing "
            ),
            ReleaseRequest {
                ticket: t("PAY-1"),
                wiki: link("HTTPS://WIKI/X"),
                comment: "Big Change".to_string(),
                no_need_admin: true,
                services: Some(vec![s("billing")]),
                tracker: None,
            }
        );
        assert_eq!(
            command("Dep   START  pay-1"),
            Command::Start { ticket: t("PAY-1") }
        );
        assert_eq!(
            command("ACCEPT #Pay-1"),
            Command::Accept { ticket: t("PAY-1") }
        );
        assert_eq!(parse(" QUEUE "), Ok(Input::Query(Query::Queue)));
    }

    #[test]
    fn the_wiki_link_is_optional_for_the_parser() {
        let request = request("dobro PAY-1 just a comment");
        assert_eq!(request.wiki, None);
        assert_eq!(request.comment, "just a comment");
        assert_eq!(self::request("dobro PAY-1").comment, "");
    }

    #[test]
    fn every_command_of_the_usage_parses() {
        let cases: Vec<(&str, Input)> = vec![
            (
                "dobro #PAY-1 https://wiki/x comment no_need_admin services=a,b",
                Input::Command(Command::Request(ReleaseRequest {
                    ticket: t("PAY-1"),
                    wiki: link("https://wiki/x"),
                    comment: "comment".to_string(),
                    no_need_admin: true,
                    services: Some(vec![s("a"), s("b")]),
                    tracker: None,
                })),
            ),
            ("queue", Input::Query(Query::Queue)),
            ("accept PAY-1", cmd(Command::Accept { ticket: t("PAY-1") })),
            (
                "reject PAY-1 no release notes",
                cmd(Command::Reject {
                    ticket: t("PAY-1"),
                    reason: r("no release notes"),
                }),
            ),
            ("cancel PAY-1", cmd(Command::Cancel { ticket: t("PAY-1") })),
            ("here PAY-1", cmd(Command::Here { ticket: t("PAY-1") })),
            (
                "dep start PAY-1",
                cmd(Command::Start { ticket: t("PAY-1") }),
            ),
            (
                "dep finish PAY-1",
                cmd(Command::Finish { ticket: t("PAY-1") }),
            ),
            (
                "dep rollback PAY-1 error rate [up](https://grafana/d)",
                cmd(Command::Rollback {
                    ticket: t("PAY-1"),
                    reason: r("error rate up"),
                }),
            ),
            (
                "freeze black friday",
                cmd(Command::Freeze {
                    reason: r("black friday"),
                    services: None,
                }),
            ),
            (
                "freeze db migration services=billing,api",
                cmd(Command::Freeze {
                    reason: r("db migration"),
                    services: Some(vec![s("billing"), s("api")]),
                }),
            ),
            ("unfreeze", cmd(Command::Unfreeze)),
            (
                "dep alive pay-1 within=6m",
                cmd(Command::Alive {
                    ticket: t("PAY-1"),
                    within: chrono::Duration::minutes(6),
                }),
            ),
            (
                "dep takeover PAY-1 runner gone since friday",
                cmd(Command::Takeover {
                    ticket: t("PAY-1"),
                    reason: r("runner gone since friday"),
                }),
            ),
            (
                "who Billing",
                Input::Query(Query::Who {
                    service: s("billing"),
                }),
            ),
            (
                "history",
                Input::Query(Query::History(HistoryFilter::default())),
            ),
            (
                "history service=billing ticket=pay-1 actor=@U01 type=DeploymentStarted",
                Input::Query(Query::History(HistoryFilter {
                    service: Some(s("billing")),
                    ticket: Some(t("PAY-1")),
                    actor: Some(UserId::parse("U01").unwrap()),
                    event_type: Some("DeploymentStarted".to_string()),
                    since: None,
                    until: None,
                })),
            ),
            (
                "suspects at=2026-11-25T03:12Z window=90m services=billing,api",
                Input::Query(Query::Suspects {
                    at: Some("2026-11-25T03:12Z".into()),
                    window: Some(chrono::Duration::minutes(90)),
                    services: vec![s("billing"), s("api")],
                }),
            ),
            ("help", Input::Query(Query::Help)),
        ];
        let mut verbs_seen = Vec::new();
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected.clone()), "{text}");
            if let Input::Command(command) = &expected {
                verbs_seen.push(command.verb());
            } else {
                verbs_seen.push(text.split_whitespace().next().unwrap());
            }
        }
        for (verb, _) in USAGE {
            assert!(verbs_seen.contains(verb), "no case for `{verb}`");
        }
    }

    #[test]
    fn a_sign_of_life_lasts_ten_minutes_unless_it_says() {
        assert_eq!(
            command("dep alive PAY-1"),
            Command::Alive {
                ticket: t("PAY-1"),
                within: ALIVE_WITHIN
            }
        );
        for bad in ["dep alive PAY-1 within=0s", "dep alive PAY-1 within=soon"] {
            assert!(
                matches!(
                    parse(bad),
                    Err(ParseError::BadValue {
                        verb: "dep alive",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("dep alive PAY-1 now"),
            Err(ParseError::Unexpected {
                verb: "dep alive",
                ..
            })
        ));
    }

    #[test]
    fn a_takeover_may_be_forced_and_a_forced_one_confirmed_without_a_reason() {
        let forced = |reason: Option<&str>| Command::ForceTakeover {
            ticket: t("PAY-1"),
            reason: reason.map(r),
        };
        for text in [
            "dep takeover PAY-1 --force pipeline crashed",
            "dep takeover --force pay-1 pipeline crashed",
            "DEP TAKEOVER #PAY-1 --FORCE pipeline   crashed",
        ] {
            assert_eq!(command(text), forced(Some("pipeline crashed")), "{text}");
        }
        assert_eq!(command("dep takeover PAY-1 --force"), forced(None));
        assert_eq!(command("dep takeover --force PAY-1"), forced(None));
        assert_eq!(
            parse("dep takeover PAY-1"),
            Err(ParseError::Missing {
                verb: "dep takeover",
                what: "a reason"
            })
        );
        assert!(matches!(
            parse("dep takeover --force"),
            Err(ParseError::Missing {
                verb: "dep takeover",
                what: "the ticket"
            })
        ));
    }

    #[test]
    fn the_aliases_parse() {
        assert_eq!(parse("q"), Ok(Input::Query(Query::Queue)));
        assert_eq!(parse("?"), Ok(Input::Query(Query::Help)));
        assert_eq!(
            command("deploy start PAY-1"),
            Command::Start { ticket: t("PAY-1") }
        );
        assert_eq!(
            command("dep done PAY-1"),
            Command::Finish { ticket: t("PAY-1") }
        );
    }

    #[test]
    fn missing_parts_name_the_usage() {
        let cases = [
            ("dobro", "dobro", "the ticket"),
            ("accept", "accept", "the ticket"),
            ("cancel", "cancel", "the ticket"),
            ("here", "here", "the ticket"),
            ("reject", "reject", "the ticket"),
            ("reject PAY-1", "reject", "a reason"),
            ("dep start", "dep start", "the ticket"),
            ("dep finish", "dep finish", "the ticket"),
            ("dep rollback", "dep rollback", "the ticket"),
            ("dep rollback PAY-1   ", "dep rollback", "a reason"),
            ("dep takeover", "dep takeover", "the ticket"),
            ("dep takeover PAY-1", "dep takeover", "a reason"),
            (
                "dep",
                "dep",
                "`start`, `finish`, `rollback`, `alive` or `takeover` and the ticket",
            ),
            ("freeze", "freeze", "a reason"),
            ("freeze services=web", "freeze", "a reason"),
            (
                "freeze now services=",
                "freeze",
                "a service after `services=`",
            ),
            (
                "dobro PAY-1 services=,",
                "dobro",
                "a service after `services=`",
            ),
            ("who", "who", "the service"),
        ];
        for (text, verb, what) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(error, ParseError::Missing { verb, what }, "{text}");
            assert_eq!(error.usage(), Some(usage(verb)), "{text}");
            assert!(error.to_string().contains(usage(verb)), "{text}: {error}");
        }
    }

    #[test]
    fn bad_values_name_the_usage() {
        let cases = [
            (
                "accept PAY",
                "accept",
                ParseValueError::Ticket("PAY".to_string()),
            ),
            (
                "dep start 12-1",
                "dep start",
                ParseValueError::Ticket("12-1".to_string()),
            ),
            (
                "dobro https://wiki/x PAY-1",
                "dobro",
                ParseValueError::Ticket("https://wiki/x".to_string()),
            ),
            (
                "dobro PAY-1 services=bill!ng",
                "dobro",
                ParseValueError::Service("bill!ng".to_string()),
            ),
            (
                "freeze x services=a,b!c",
                "freeze",
                ParseValueError::Service("b!c".to_string()),
            ),
            (
                "who bill/ing",
                "who",
                ParseValueError::Service("bill/ing".to_string()),
            ),
            (
                "history ticket=PAY",
                "history",
                ParseValueError::Ticket("PAY".to_string()),
            ),
            (
                "history actor=<@>",
                "history",
                ParseValueError::User("<@>".to_string()),
            ),
        ];
        for (text, verb, error) in cases {
            assert_eq!(
                parse(text),
                Err(ParseError::BadValue { verb, error }),
                "{text}"
            );
        }
    }

    #[test]
    fn extra_words_name_the_usage() {
        let cases = [
            ("queue now", "queue", "now"),
            ("accept PAY-1 please", "accept", "please"),
            ("here PAY-1 PAY-2", "here", "PAY-2"),
            ("dep start PAY-1 now", "dep start", "now"),
            ("dep finish PAY-1 ok", "dep finish", "ok"),
            ("unfreeze all", "unfreeze", "all"),
            ("who billing api", "who", "api"),
            ("history billing", "history", "billing"),
        ];
        for (text, verb, extra) in cases {
            assert_eq!(
                parse(text),
                Err(ParseError::Unexpected {
                    verb,
                    extra: extra.to_string()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_words_suggest_the_command_meant() {
        let cases = [
            ("acept PAY-1", "acept", Some("accept")),
            ("Dobor PAY-1", "Dobor", Some("dobro")),
            ("quue", "quue", Some("queue")),
            ("unfrezee", "unfrezee", Some("unfreeze")),
            ("banana split", "banana", None),
        ];
        for (text, word, did_you_mean) in cases {
            assert_eq!(
                parse(text),
                Err(ParseError::Unknown {
                    word: word.to_string(),
                    did_you_mean
                }),
                "{text}"
            );
        }
        assert_eq!(
            parse("dep strat PAY-1"),
            Err(ParseError::Unknown {
                word: "dep strat".to_string(),
                did_you_mean: Some("dep start"),
            })
        );
        assert_eq!(
            parse("dep rolback PAY-1 x"),
            Err(ParseError::Unknown {
                word: "dep rolback".to_string(),
                did_you_mean: Some("dep rollback"),
            })
        );
        let error = parse("acept PAY-1").unwrap_err();
        assert_eq!(error.usage(), Some(usage("accept")));
        assert_eq!(parse("banana").unwrap_err().usage(), None);
    }

    #[test]
    fn nothing_to_say_is_empty() {
        for text in ["", "   ", " \n\t "] {
            assert_eq!(parse(text), Err(ParseError::Empty), "{text:?}");
        }
    }

    const WORDS: &[&str] = &[
        "dobro",
        "queue",
        "accept",
        "reject",
        "cancel",
        "here",
        "dep",
        "start",
        "finish",
        "rollback",
        "takeover",
        "--force",
        "freeze",
        "unfreeze",
        "who",
        "history",
        "help",
        "no_need_admin",
        "services=",
        "service=",
        "ticket=",
        "actor=",
        "type=",
        "PAY-1",
        "#pay-1",
        "https://wiki/x",
        "<",
        ">",
        "|",
        "=",
        "#",
        ",",
        "@U1",
        "[a title](https://x)",
        "[",
        "](",
        ")",
        " ",
        "\t",
        "-",
    ];

    fn built_from_words() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => prop::sample::select(WORDS).prop_map(str::to_string),
            1 => any::<String>(),
        ];
        (prop::collection::vec(piece, 0..12), any::<bool>())
            .prop_map(|(pieces, spaced)| pieces.join(if spaced { " " } else { "" }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
            if let Err(error) = parse(&text) {
                let _ = error.to_string();
                let _ = error.usage();
            }
        }

        #[test]
        fn parse_never_panics_on_command_like_text(text in built_from_words()) {
            if let Err(error) = parse(&text) {
                let _ = error.to_string();
                let _ = error.usage();
            }
        }

        #[test]
        fn every_usage_error_names_a_known_usage(text in built_from_words()) {
            if let Err(error) = parse(&text)
                && let Some(line) = error.usage()
            {
                let known = USAGE.iter().any(|(_, u)| *u == line) || line == usage("dep");
                prop_assert!(known, "{line}");
            }
        }
    }
}
