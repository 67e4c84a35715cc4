//! The read API's query parameters, parsed into the same typed filters the CLI's flags give.
//! Every error names its parameter; a parameter the endpoint does not know is an error too, so a
//! typo (`servce=billing`) is not silently a question about everything.

use chrono::{DateTime, Duration, Utc};

use super::{DEFAULT_LIMIT, MAX_LIMIT, OutcomeFilter, parse_time};
use crate::domain::{Event, ServiceName, TicketKey, UserId, parse_duration};
use crate::projections::AsOf;

/// A parameter that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub parameter: String,
    pub reason: String,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "parameter `{}`: {}", self.parameter, self.reason)
    }
}

impl std::error::Error for ParamError {}

/// A request's query string, checked against the parameters its endpoint takes.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
    now: DateTime<Utc>,
}

impl Params {
    /// Parses `query`; a name outside `allowed`, or given twice where one value is meant, is an
    /// error. Repeatable names (`service` on `/suspects`) are listed in `repeatable`.
    pub fn parse(
        query: Option<&str>,
        allowed: &[&str],
        repeatable: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Params, ParamError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                return Err(ParamError {
                    parameter: name.clone(),
                    reason: format!(
                        "unknown parameter; this endpoint takes {}",
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                });
            }
            if !repeatable.contains(&name.as_str()) && pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ParamError {
                    parameter: name.clone(),
                    reason: "given more than once".to_string(),
                });
            }
        }
        Ok(Params { pairs, now })
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The parameter parsed by `parse`, `None` when absent.
    pub fn get<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ParamError> {
        self.raw(name)
            .map(|value| {
                parse(value).map_err(|reason| ParamError {
                    parameter: name.to_string(),
                    reason,
                })
            })
            .transpose()
    }

    /// Every value of a repeatable parameter, each also split at commas.
    pub fn all<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ParamError> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|value| {
                parse(value).map_err(|reason| ParamError {
                    parameter: name.to_string(),
                    reason,
                })
            })
            .collect()
    }

    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ParamError> {
        self.get(name, |v| parse_time(v, self.now))
    }

    pub fn service(&self) -> Result<Option<ServiceName>, ParamError> {
        self.get("service", |v| {
            ServiceName::parse(v).map_err(|e| e.to_string())
        })
    }

    pub fn ticket(&self) -> Result<Option<TicketKey>, ParamError> {
        self.get("ticket", |v| TicketKey::parse(v).map_err(|e| e.to_string()))
    }

    pub fn actor(&self) -> Result<Option<UserId>, ParamError> {
        self.get("actor", |v| UserId::parse(v).map_err(|e| e.to_string()))
    }

    pub fn outcome(&self) -> Result<Option<OutcomeFilter>, ParamError> {
        self.get("outcome", OutcomeFilter::parse)
    }

    /// An event type name, as the ledger spells it (any case).
    pub fn event_type(&self) -> Result<Option<String>, ParamError> {
        self.get("type", |v| {
            Event::TYPES
                .iter()
                .find(|t| t.eq_ignore_ascii_case(v.trim()))
                .map(|t| t.to_string())
                .ok_or_else(|| {
                    format!(
                        "`{v}` is not an event type: one of {}",
                        Event::TYPES.join(", ")
                    )
                })
        })
    }

    pub fn window(&self) -> Result<Option<Duration>, ParamError> {
        self.get("window", |v| parse_duration(v).map_err(|e| e.to_string()))
    }

    /// `at`: a revision (digits) or a time.
    pub fn at(&self) -> Result<Option<AsOf>, ParamError> {
        self.get("at", |v| {
            let v = v.trim();
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                return v
                    .parse()
                    .map(AsOf::Revision)
                    .map_err(|_| format!("`{v}` is not a revision"));
            }
            parse_time(v, self.now).map(AsOf::Time)
        })
    }

    pub fn cursor(&self) -> Result<Option<u64>, ParamError> {
        self.get("cursor", |v| {
            v.trim()
                .parse()
                .map_err(|_| format!("`{v}` is not a cursor: use the `next_cursor` of a page"))
        })
    }

    /// `limit`: 1 to `MAX_LIMIT`, `DEFAULT_LIMIT` when absent.
    pub fn limit(&self) -> Result<usize, ParamError> {
        Ok(self
            .get("limit", |v| match v.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(format!("`{v}` is not a limit: 1 to {MAX_LIMIT}")),
            })?
            .unwrap_or(DEFAULT_LIMIT))
    }

    /// Whether the caller gave a limit (an export without one is the whole listing).
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn params(query: &str) -> Result<Params, ParamError> {
        Params::parse(
            Some(query),
            &["service", "since", "at", "limit", "type"],
            &["service"],
            now(),
        )
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let error = params("servce=billing").unwrap_err();
        assert_eq!(error.parameter, "servce");
        assert!(error.reason.contains("service, since"), "{}", error.reason);
        let error = params("since=1h%20ago&since=2h%20ago").unwrap_err();
        assert_eq!(error.parameter, "since");
        assert!(params("service=a&service=b").is_ok());
    }

    #[test]
    fn values_parse_or_name_their_parameter() {
        let p = params("since=2h%20ago&at=42&limit=5&type=deploymentstarted").unwrap();
        assert_eq!(
            p.time("since").unwrap(),
            Some("2026-11-25T10:00:00Z".parse().unwrap())
        );
        assert_eq!(p.at().unwrap(), Some(AsOf::Revision(42)));
        assert_eq!(p.limit().unwrap(), 5);
        assert_eq!(
            p.event_type().unwrap().as_deref(),
            Some("DeploymentStarted")
        );
        let p = params("at=2026-11-25%2003:12&limit=0&type=Exploded&since=soon").unwrap();
        assert_eq!(
            p.at().unwrap(),
            Some(AsOf::Time("2026-11-25T03:12:00Z".parse().unwrap()))
        );
        assert_eq!(p.limit().unwrap_err().parameter, "limit");
        assert_eq!(p.event_type().unwrap_err().parameter, "type");
        assert_eq!(p.time("since").unwrap_err().parameter, "since");
        assert_eq!(params("").unwrap().limit().unwrap(), DEFAULT_LIMIT);
        assert!(params("limit=1001").unwrap().limit().is_err());
    }
}
