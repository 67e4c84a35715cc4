//! One HTTP attempt of a sink, and what its failure means for the next: retried (a 5xx, a 429,
//! a 408, a timeout, a refused connection), after the receiver's `Retry-After` when it gave
//! one, or given up at once (another 4xx: the request itself is wrong, and sending it again
//! will not help). The retry loop itself is the outbox's; each sink only says what happened.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};

/// The longest `Retry-After` honoured as given; a longer one waits this long.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub retry: Retry,
    /// What went wrong, with the receiver's answer when it gave one.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again, after `after` when the receiver said.
    Later { after: Option<Duration> },
    /// Trying again will not help.
    Never,
}

impl Failure {
    pub fn never(detail: impl Into<String>) -> Failure {
        Failure {
            retry: Retry::Never,
            detail: detail.into(),
        }
    }
}

/// A successful answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

/// `request` with `body` as its JSON body.
pub fn with_json(request: RequestBuilder, body: &serde_json::Value) -> RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// Sends `request`; a 2xx is an answer, anything else a failure saying whether to retry.
pub async fn send(request: RequestBuilder) -> Result<Answer, Failure> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let retry = if error.is_timeout() || error.is_connect() || error.is_request() {
                Retry::Later { after: None }
            } else {
                Retry::Never
            };
            // Without the URL: a webhook's may carry its own token.
            let error = error.without_url();
            return Err(Failure {
                retry,
                detail: error_chain(&error),
            });
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(Answer { status, body });
    }
    let retry = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            Retry::Later { after: retry_after }
        }
        StatusCode::REQUEST_TIMEOUT => Retry::Later { after: None },
        // A token being rotated or a receiver being redeployed passes: try again (up to
        // `attempts`) rather than lose every marker of that moment.
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            Retry::Later { after: None }
        }
        s if s.is_server_error() => Retry::Later { after: None },
        _ => Retry::Never,
    };
    Err(Failure {
        retry,
        detail: format!("HTTP {status}: {}", excerpt(&body)),
    })
}

/// `Retry-After` in seconds (the form Grafana, PagerDuty and most webhooks send); an HTTP date
/// is not honoured (the backoff applies).
fn retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(LONGEST_RETRY_AFTER))
}

/// The first 500 characters of a body, for a dead letter or a log line.
fn excerpt(body: &str) -> String {
    let mut text: String = body.chars().take(500).collect();
    if text.len() < body.len() {
        text.push('…');
    }
    text
}

/// An error with its causes (reqwest's own message hides whether it was DNS, TLS or a refusal).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_and_bounded() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(retry_after("99999"), Some(LONGEST_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn a_long_body_is_cut() {
        let long = "x".repeat(600);
        assert_eq!(excerpt(&long).chars().count(), 501);
        assert_eq!(excerpt("short"), "short");
    }
}
