//! Slack's request signing (the v0 scheme): an HMAC-SHA256 of `v0:<timestamp>:<body>` with the
//! signing secret, checked by slack-morphism's `SlackEventSignatureVerifier`, and a timestamp
//! no more than five minutes from now, checked here as well so that a replayed request is
//! refused whatever the verifier's own policy.

use axum::http::HeaderMap;
use chrono::Utc;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::{
    SlackEventSignatureVerifier, SlackEventSignatureVerifierError,
};
use thiserror::Error;

/// How far a request's timestamp may be from now.
pub const WINDOW_SECONDS: i64 = 5 * 60;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unverified {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("the timestamp is not a number")]
    BadTimestamp,
    #[error("the timestamp is {0} s away from now (more than five minutes)")]
    Stale(i64),
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the signature does not match")]
    BadSignature,
}

/// Checks a request from Slack; returns its body as text.
pub fn verify<'b>(
    secret: &str,
    headers: &HeaderMap,
    body: &'b [u8],
    now: i64,
) -> Result<&'b str, Unverified> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(Unverified::MissingHeader(name))
    };
    let timestamp = header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)?;
    let signature = header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Unverified::BadTimestamp)?;
    if (now - sent).abs() > WINDOW_SECONDS {
        return Err(Unverified::Stale(now - sent));
    }
    let body = std::str::from_utf8(body).map_err(|_| Unverified::NotUtf8)?;
    SlackEventSignatureVerifier::new(&SlackSigningSecret(secret.to_string()))
        .verify(signature, body, timestamp)
        .map_err(|error| match error {
            // The verifier checks the window against the system clock as well.
            SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_) => {
                Unverified::Stale(now - sent)
            }
            _ => Unverified::BadSignature,
        })?;
    Ok(body)
}

/// The current Unix time, for `verify`.
pub fn now() -> i64 {
    Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The example of Slack's documentation ("Verifying requests from Slack"); its 2018
    /// timestamp is stale today, so only refusals are checked here (the integration tests
    /// sign requests now and see them accepted).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const TIMESTAMP: i64 = 1531420618;
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers(timestamp: i64, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_str(&timestamp.to_string()).unwrap(),
        );
        headers.insert(
            "x-slack-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        headers
    }

    #[test]
    fn a_stale_timestamp_or_a_wrong_signature_is_refused() {
        let headers_ok = headers(TIMESTAMP, SIGNATURE);
        assert_eq!(
            verify(SECRET, &headers_ok, BODY.as_bytes(), TIMESTAMP + 301),
            Err(Unverified::Stale(301))
        );
        assert_eq!(
            verify(SECRET, &headers_ok, b"token=changed", TIMESTAMP),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify("another secret", &headers_ok, BODY.as_bytes(), TIMESTAMP),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &HeaderMap::new(), BODY.as_bytes(), TIMESTAMP),
            Err(Unverified::MissingHeader("x-slack-request-timestamp"))
        );
    }
}
