//! PagerDuty change events (Events API v2, `POST /v2/change/enqueue`), so that an incident's
//! page lists the releases just before it. A change event has no deduplication key of its own:
//! the ledger event id travels in `custom_details.event_id`, where a responder (or a rule) can
//! tell a repeat after a crash from a second release.

use async_trait::async_trait;
use chrono::SecondsFormat;
use serde_json::json;

use super::attempt::{Failure, send, with_json};
use super::marker::Marker;
use super::{Annotated, Memory, Sink};

pub struct PagerDuty {
    http: reqwest::Client,
    url: String,
    routing_key: String,
    /// Links the ticket, when the config says where tickets live.
    tracker_url: Option<String>,
}

impl PagerDuty {
    pub fn new(
        http: reqwest::Client,
        url: &str,
        routing_key: String,
        tracker_url: Option<String>,
    ) -> PagerDuty {
        PagerDuty {
            http,
            url: url.trim_end_matches('/').to_string(),
            routing_key,
            tracker_url,
        }
    }

    fn body(&self, marker: &Marker) -> serde_json::Value {
        let links: Vec<_> = self
            .tracker_url
            .iter()
            .map(|base| json!({"href": format!("{base}{}", marker.ticket), "text": marker.ticket.to_string()}))
            .collect();
        json!({
            "routing_key": self.routing_key,
            "payload": {
                "summary": marker.summary(),
                "timestamp": marker.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "source": "dobrobot",
                "custom_details": {
                    "event_id": marker.event_id,
                    "event_type": marker.event_type,
                    "revision": marker.revision,
                    "ticket": marker.ticket,
                    "services": marker.services,
                    "outcome": marker.outcome.word(),
                    "by": marker.by,
                    "reason": marker.reason,
                },
            },
            "links": links,
        })
    }
}

#[async_trait]
impl Sink for PagerDuty {
    fn name(&self) -> &str {
        "pagerduty"
    }

    async fn deliver(
        &self,
        marker: &Marker,
        _memory: &Memory,
    ) -> Result<Option<Annotated>, Failure> {
        let request = self.http.post(format!("{}/v2/change/enqueue", self.url));
        send(with_json(request, &self.body(marker))).await?;
        Ok(None)
    }
}
