//! Jira's REST API, Cloud and Server / Data Center: `GET /rest/api/{3|2}/issue/{key}` with only
//! the fields the checks read.
//!
//! Cloud takes basic auth with an account's email and API token at REST API 3; Server / Data
//! Center takes a personal access token as a bearer token at REST API 2. The answer's shape is
//! the same for the fields read here, so one parser serves both.
//!
//! A lookup has one time budget (`timeout`, 3 s by default) for everything, a retry included:
//! a 429 is retried once, after its `Retry-After`, only when that wait fits in what is left of
//! the budget; otherwise the tracker is `Unavailable` and the policy decides. A `dobro` never
//! waits on Jira for longer than the budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ConstantBuilder, Retryable};
use reqwest::StatusCode;
use serde::Deserialize;
use tracing::{error, warn};

use super::{Tracker, setting_duration};
use crate::config::{ConfigError, JiraDeployment, Secret, TrackerConfig};
use crate::domain::TicketKey;
use crate::domain::tracker::{Issue, StatusCategory, TrackerFinding};

/// The fields the checks read, and nothing else: a smaller answer, faster.
pub const FIELDS: &str = "summary,status,issuetype,fixVersions,assignee,labels";

/// How dobrobot proves who it is to Jira.
#[derive(Clone)]
enum Auth {
    /// Cloud: email and API token.
    Basic { email: String, token: Secret },
    /// Server / Data Center: a personal access token.
    Bearer(Secret),
}

pub struct Jira {
    http: reqwest::Client,
    /// `https://example.atlassian.net/rest/api/3/issue/`
    issue_url: String,
    auth: Auth,
    timeout: Duration,
}

impl Jira {
    /// Jira as `[tracker]` and the environment describe it.
    pub fn from_config(config: &TrackerConfig) -> Result<Jira, ConfigError> {
        let base = config.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ConfigError::Tracker(format!(
                "base_url = `{base}`: expected the Jira site's http(s) address, \
                 e.g. https://example.atlassian.net (or DOBROBOT_TRACKER_BASE_URL)"
            )));
        }
        let (version, auth) = match config.deployment {
            JiraDeployment::Cloud => match (&config.email, &config.api_token) {
                (Some(email), Some(token)) => (
                    3,
                    Auth::Basic {
                        email: email.clone(),
                        token: token.clone(),
                    },
                ),
                _ => {
                    return Err(ConfigError::Tracker(
                        "deployment = \"cloud\" needs JIRA_EMAIL and JIRA_API_TOKEN in the \
                         environment"
                            .to_string(),
                    ));
                }
            },
            JiraDeployment::Server => match &config.token {
                Some(token) => (2, Auth::Bearer(token.clone())),
                None => {
                    return Err(ConfigError::Tracker(
                        "deployment = \"server\" needs JIRA_TOKEN (a personal access token) in \
                         the environment"
                            .to_string(),
                    ));
                }
            },
        };
        let timeout = setting_duration("timeout", &config.timeout)?;
        if timeout.is_zero() {
            return Err(ConfigError::Tracker(
                "timeout must be more than 0s".to_string(),
            ));
        }
        crate::slack::socket::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("dobrobot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ConfigError::Tracker(format!("building the HTTP client: {error}")))?;
        Ok(Jira {
            http,
            issue_url: format!("{base}/rest/api/{version}/issue/"),
            auth,
            timeout,
        })
    }

    /// One GET. `Err` is a rate limit, the one answer worth asking again.
    async fn fetch(
        &self,
        ticket: &TicketKey,
        deadline: Instant,
    ) -> Result<TrackerFinding, RateLimited> {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = self
            .http
            .get(format!("{}{ticket}?fields={FIELDS}", self.issue_url))
            .header("accept", "application/json")
            .timeout(left);
        let request = match &self.auth {
            Auth::Basic { email, token } => request.basic_auth(email, Some(&token.0)),
            Auth::Bearer(token) => request.bearer_auth(&token.0),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Ok(unavailable(self.failure(&error))),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Ok(unavailable(self.failure(&error))),
        };
        Ok(match status {
            StatusCode::OK => match serde_json::from_slice::<IssueBody>(&body) {
                Ok(issue) => TrackerFinding::Found(Box::new(issue.into())),
                Err(error) => unavailable(format!("Jira's answer is not an issue: {error}")),
            },
            StatusCode::NOT_FOUND => TrackerFinding::NotFound,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => TrackerFinding::Misconfigured {
                reason: format!("HTTP {}{}", status.as_u16(), messages(&body)),
            },
            StatusCode::TOO_MANY_REQUESTS => return Err(RateLimited { retry_after }),
            other => unavailable(format!("HTTP {}{}", other.as_u16(), messages(&body))),
        })
    }

    fn failure(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            format!("no answer within {}s", self.timeout.as_secs_f32())
        } else {
            format!("cannot reach Jira: {error}")
        }
    }
}

#[async_trait]
impl Tracker for Jira {
    async fn lookup(&self, ticket: &TicketKey) -> TrackerFinding {
        let deadline = Instant::now() + self.timeout;
        let attempt = || self.fetch(ticket, deadline);
        let fits = |limited: &RateLimited| {
            limited
                .retry_after
                .and_then(|wait| Instant::now().checked_add(wait))
                .is_some_and(|then| then < deadline)
        };
        let retried = AtomicBool::new(false);
        let answered = attempt
            .retry(ConstantBuilder::default().with_max_times(1))
            .sleep(tokio::time::sleep)
            .when(fits)
            .adjust(|limited: &RateLimited, planned| planned.and(limited.retry_after))
            .notify(|_, _| retried.store(true, Ordering::Relaxed))
            .await;
        let finding = match answered {
            Ok(finding) => finding,
            Err(RateLimited { retry_after }) => unavailable(match retry_after {
                _ if retried.load(Ordering::Relaxed) => {
                    "rate limited again after waiting once".to_string()
                }
                Some(wait) => format!(
                    "rate limited, Retry-After {}s is beyond the {}s allowed",
                    wait.as_secs(),
                    self.timeout.as_secs_f32()
                ),
                None => "rate limited (HTTP 429 without Retry-After)".to_string(),
            }),
        };
        match &finding {
            TrackerFinding::Misconfigured { reason } => error!(
                %ticket,
                reason,
                "Jira refused dobrobot's credentials: check [tracker] and JIRA_* in the environment"
            ),
            TrackerFinding::Unavailable { reason } => warn!(%ticket, reason, "Jira did not answer"),
            TrackerFinding::Found(_) | TrackerFinding::NotFound => {}
        }
        finding
    }
}

/// A 429, with how long Jira asked to wait.
#[derive(Debug)]
struct RateLimited {
    retry_after: Option<Duration>,
}

fn unavailable(reason: String) -> TrackerFinding {
    TrackerFinding::Unavailable { reason }
}

/// `Retry-After` in seconds (what Jira sends); a date or nonsense counts as absent.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// How much of Jira's error messages a reason keeps, in characters.
const MESSAGE_LIMIT: usize = 200;

/// Jira's error messages (`{"errorMessages": [...], "errors": {...}}`), as `: a; b`.
fn messages(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default, rename = "errorMessages")]
        error_messages: Vec<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) if !parsed.error_messages.is_empty() => {
            // The reason is recorded in the ledger and shown to people: a sentence, not a page.
            let text = parsed.error_messages.join("; ");
            match text.char_indices().nth(MESSAGE_LIMIT) {
                Some((cut, _)) => format!(": {}…", &text[..cut]),
                None => format!(": {text}"),
            }
        }
        _ => String::new(),
    }
}

/// The parts of Jira's issue that `FIELDS` asks for.
#[derive(Deserialize)]
struct IssueBody {
    fields: Fields,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    summary: String,
    status: Status,
    #[serde(rename = "issuetype")]
    issue_type: Option<Named>,
    #[serde(default)]
    fix_versions: Vec<Named>,
    assignee: Option<User>,
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    name: String,
    status_category: Option<Category>,
}

#[derive(Deserialize)]
struct Category {
    key: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    display_name: String,
}

impl From<IssueBody> for Issue {
    fn from(body: IssueBody) -> Issue {
        let f = body.fields;
        Issue {
            summary: f.summary,
            status: f.status.name,
            status_category: f.status.status_category.map(|c| StatusCategory {
                key: c.key,
                name: c.name,
            }),
            issue_type: f.issue_type.map(|t| t.name).unwrap_or_default(),
            fix_versions: f.fix_versions.into_iter().map(|v| v.name).collect(),
            assignee: f.assignee.map(|a| a.display_name),
            labels: f.labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_kept_short() {
        let body = serde_json::json!({"errorMessages": ["a".repeat(500)], "errors": {}});
        let text = messages(body.to_string().as_bytes());
        assert_eq!(text.chars().count(), 2 + MESSAGE_LIMIT + 1);
        assert_eq!(
            messages(br#"{"errorMessages":["x","y"],"errors":{}}"#),
            ": x; y"
        );
        assert_eq!(messages(b"<html>Service Unavailable</html>"), "");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));

        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
