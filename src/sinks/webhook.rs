//! Generic webhooks: a JSON POST of each marker (the ledger event's id, revision, type, data
//! and metadata as recorded, plus the outcome, ticket and services), signed like Slack's
//! requests so that the receiver can tell it came from us and was not replayed:
//!
//! - `X-Dobrobot-Request-Timestamp: <unix seconds>`
//! - `X-Dobrobot-Signature: v1=<hex of HMAC-SHA256(secret, "v1:<timestamp>:<body>")>`
//! - `X-Dobrobot-Delivery: <ledger event id>`, the same on every repeat: the receiver's
//!   deduplication key.
//!
//! The receiver recomputes the HMAC over the raw body, compares in constant time, and refuses
//! a timestamp more than five minutes from its clock.

use async_trait::async_trait;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::attempt::{Failure, send};
use super::marker::Marker;
use super::{Annotated, Memory, Sink};

pub const TIMESTAMP_HEADER: &str = "x-dobrobot-request-timestamp";
pub const SIGNATURE_HEADER: &str = "x-dobrobot-signature";
pub const DELIVERY_HEADER: &str = "x-dobrobot-delivery";

pub struct Webhook {
    http: reqwest::Client,
    name: String,
    url: String,
    secret: String,
}

impl Webhook {
    pub fn new(http: reqwest::Client, name: &str, url: &str, secret: String) -> Webhook {
        Webhook {
            http,
            name: format!("webhook:{name}"),
            url: url.to_string(),
            secret,
        }
    }
}

/// The body a marker is sent as.
pub fn body(marker: &Marker) -> String {
    json!({
        "id": marker.event_id,
        "revision": marker.revision,
        "type": marker.event_type,
        "outcome": marker.outcome.word(),
        "ticket": marker.ticket,
        "services": marker.services,
        "data": marker.data,
        "metadata": marker.metadata,
    })
    .to_string()
}

/// `v1=<hex HMAC-SHA256(secret, "v1:<timestamp>:<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(format!("v1:{timestamp}:{body}").as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Sink for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(
        &self,
        marker: &Marker,
        _memory: &Memory,
    ) -> Result<Option<Annotated>, Failure> {
        let body = body(marker);
        // Signed at each attempt: a retry an hour later is not a stale request.
        let timestamp = Utc::now().timestamp();
        let request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, &body))
            .header(DELIVERY_HEADER, marker.event_id.to_string())
            .body(body);
        send(request).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_over_version_timestamp_and_body() {
        // Computed independently: printf 'v1:1700000000:{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign("s3cret", 1_700_000_000, r#"{"a":1}"#),
            "v1=5758379e1e2bd8ca5cbc893acda89dd28be628dc70c337e7943ddd194922a4bf"
        );
    }
}
