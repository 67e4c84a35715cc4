//! Chat text -> a typed `Input`. The one place where the command syntax lives.
//!
//! Takes the text after the bot's mention, as Slack delivers it: leading `<@U123>` mentions,
//! links as `<https://wiki/x|title>` (one token even when the title has spaces), HTML entities
//! (`&amp;`), any case, `#` optional before a ticket, extra spaces. Never panics: a proptest
//! feeds it arbitrary strings.

use thiserror::Error;

use super::command::{Command, HistoryFilter, Input, Query, ReleaseRequest};
use super::types::{ParseValueError, Reason, ServiceName, TicketKey, UserId, WikiLink};

/// Every command's usage, as the help reply lists them.
pub const USAGE: &[(&str, &str)] = &[
    ("dobro", "dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]"),
    ("queue", "queue"),
    ("accept", "accept TICKET"),
    ("reject", "reject TICKET <reason>"),
    ("cancel", "cancel TICKET"),
    ("here", "here TICKET"),
    ("dep start", "dep start TICKET"),
    ("dep finish", "dep finish TICKET"),
    ("dep rollback", "dep rollback TICKET <reason>"),
    ("freeze", "freeze <reason> [services=a,b]"),
    ("unfreeze", "unfreeze"),
    ("who", "who <service>"),
    ("history", "history [service=S] [ticket=T] [actor=U] [type=EventType]"),
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

/// The usage line of a verb from [`USAGE`].
pub fn usage(verb: &str) -> &'static str {
    USAGE
        .iter()
        .find(|(v, _)| *v == verb)
        .map(|(_, u)| *u)
        .unwrap_or("help")
}

pub fn parse(text: &str) -> Result<Input, ParseError> {
    let decoded = decode_entities(text);
    let mut tokens = tokenize(&decoded);
    while tokens.first().is_some_and(|t| is_mention(t)) {
        tokens.remove(0);
    }
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
        "dep" | "deploy" => deployment(args),
        "freeze" => freeze(args),
        "unfreeze" => no_args("unfreeze", args).map(|()| cmd(Command::Unfreeze)),
        "who" => who(args),
        "history" => history(args),
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
    let (ticket, rest) = args.split_first().ok_or(ParseError::Missing {
        verb: VERB,
        what: "the ticket",
    })?;
    let ticket = TicketKey::parse(ticket).map_err(|error| ParseError::BadValue { verb: VERB, error })?;
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
            && let Ok(link) = WikiLink::parse(token)
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
    })
}

fn deployment(args: &[String]) -> Result<Input, ParseError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(ParseError::Missing {
            verb: "dep start",
            what: "`start`, `finish` or `rollback` and the ticket",
        });
    };
    match sub.to_lowercase().as_str() {
        "start" => ticket_only("dep start", rest).map(|ticket| cmd(Command::Start { ticket })),
        "finish" | "done" => {
            ticket_only("dep finish", rest).map(|ticket| cmd(Command::Finish { ticket }))
        }
        "rollback" => ticket_and_reason("dep rollback", rest)
            .map(|(ticket, reason)| cmd(Command::Rollback { ticket, reason })),
        other => Err(ParseError::Unknown {
            word: format!("dep {other}"),
            did_you_mean: did_you_mean(&format!("dep {other}")).or(Some("dep start")),
        }),
    }
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

fn ticket_and_reason(
    verb: &'static str,
    args: &[String],
) -> Result<(TicketKey, Reason), ParseError> {
    let (ticket, rest) = args.split_first().ok_or(ParseError::Missing {
        verb,
        what: "the ticket",
    })?;
    let ticket = TicketKey::parse(ticket).map_err(|error| ParseError::BadValue { verb, error })?;
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

/// Splits on white space, keeping Slack's `<...>` spans (links with titles) whole.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_angle = false;
    for c in text.chars() {
        match c {
            '<' if !in_angle => {
                in_angle = true;
                current.push(c);
            }
            '>' if in_angle => {
                in_angle = false;
                current.push(c);
            }
            c if c.is_whitespace() && !in_angle => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn is_mention(token: &str) -> bool {
    token.starts_with("<@") && token.ends_with('>')
}

/// How a Slack token reads to a person: `<https://x|Notes>` -> `Notes`, `<https://x>` -> the
/// link, `<@U1>` -> `@U1`.
fn display_text(token: &str) -> String {
    match token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        Some(inner) => {
            let (target, label) = match inner.split_once('|') {
                Some((t, l)) => (t, Some(l)),
                None => (inner, None),
            };
            match (label, target.strip_prefix('@')) {
                (Some(label), _) => label.trim().to_string(),
                (None, Some(user)) => format!("@{user}"),
                (None, None) => target.to_string(),
            }
        }
        None => token.to_string(),
    }
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
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
