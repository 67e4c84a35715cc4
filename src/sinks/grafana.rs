//! Grafana annotations (the HTTP API's `/api/annotations`): a start posts an annotation tagged
//! `dobrobot`, the services, the ticket and `started`; its finish or rollback patches that
//! annotation with `timeEnd` and the outcome, so the graph shows the deployment as a region.
//! A finish whose start's annotation is unknown (it was never delivered, or Grafana was set
//! up mid-deployment) gets a point annotation of its own.
//!
//! Each annotation carries the tag `event:<ledger event id>`, and a start or a point is looked
//! up by it before it is created: a repeat after a crash finds the annotation it made before
//! instead of drawing a second one. A patch is the same patch twice.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::config::GrafanaSink;

use super::attempt::{Failure, send, with_json};
use super::marker::{Marker, Outcome};
use super::{Annotated, Memory, Sink};

pub struct Grafana {
    http: reqwest::Client,
    url: String,
    token: String,
    dashboard_uid: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

#[derive(Deserialize)]
struct Found {
    id: i64,
}

impl Grafana {
    pub fn new(http: reqwest::Client, config: &GrafanaSink, token: String) -> Grafana {
        Grafana {
            http,
            url: config.url.trim_end_matches('/').to_string(),
            token,
            dashboard_uid: config.dashboard_uid.clone(),
        }
    }

    fn tags(marker: &Marker, event_id: Uuid) -> Vec<String> {
        let mut tags = vec!["dobrobot".to_string()];
        tags.extend(marker.services.iter().map(|s| s.to_string()));
        tags.push(marker.ticket.to_string());
        tags.push(marker.outcome.word().to_string());
        tags.push(event_tag(event_id));
        tags
    }

    /// The annotation tagged with `event_id`, if one was made.
    async fn find(&self, event_id: Uuid) -> Result<Option<i64>, Failure> {
        let request = self
            .http
            .get(format!("{}/api/annotations", self.url))
            .bearer_auth(&self.token)
            .query(&[
                ("tags", "dobrobot".to_string()),
                ("tags", event_tag(event_id)),
                ("limit", "1".to_string()),
            ]);
        let answer = send(request).await?;
        let found: Vec<Found> = serde_json::from_str(&answer.body)
            .map_err(|e| Failure::never(format!("Grafana's annotations are not a list: {e}")))?;
        Ok(found.first().map(|f| f.id))
    }

    /// Posts a point annotation for `marker` (unless one is found); its id.
    async fn create(&self, marker: &Marker) -> Result<i64, Failure> {
        if let Some(id) = self.find(marker.event_id).await? {
            return Ok(id);
        }
        let mut body = json!({
            "time": marker.at.timestamp_millis(),
            "tags": Grafana::tags(marker, marker.event_id),
            "text": marker.summary(),
        });
        if let Some(uid) = &self.dashboard_uid {
            body["dashboardUID"] = Value::String(uid.clone());
        }
        let request = self
            .http
            .post(format!("{}/api/annotations", self.url))
            .bearer_auth(&self.token);
        let request = with_json(request, &body);
        let answer = send(request).await?;
        let created: Created = serde_json::from_str(&answer.body)
            .map_err(|e| Failure::never(format!("Grafana's answer has no id: {e}")))?;
        Ok(created.id)
    }

    /// Turns the start's annotation `id` into a region ending at `marker`.
    async fn close(&self, id: i64, marker: &Marker) -> Result<(), Failure> {
        let start = marker
            .start
            .as_ref()
            .map_or(marker.event_id, |s| s.event_id);
        let mut body = json!({
            "timeEnd": marker.at.timestamp_millis(),
            "tags": Grafana::tags(marker, start),
            "text": marker.summary(),
        });
        if let Some(start) = &marker.start {
            body["time"] = json!(start.at.timestamp_millis());
        }
        let request = self
            .http
            .patch(format!("{}/api/annotations/{id}", self.url))
            .bearer_auth(&self.token);
        let request = with_json(request, &body);
        send(request).await.map(drop)
    }
}

/// The tag that finds the annotation of a ledger event.
pub fn event_tag(event_id: Uuid) -> String {
    format!("event:{event_id}")
}

#[async_trait]
impl Sink for Grafana {
    fn name(&self) -> &str {
        "grafana"
    }

    async fn deliver(
        &self,
        marker: &Marker,
        memory: &Memory,
    ) -> Result<Option<Annotated>, Failure> {
        match (marker.outcome, memory.start_annotation) {
            (Outcome::Started, _) => {
                let id = self.create(marker).await?;
                Ok(Some(Annotated {
                    ticket: marker.ticket.clone(),
                    start_event_id: marker.event_id,
                    annotation_id: id,
                }))
            }
            (_, Some(id)) => self.close(id, marker).await.map(|()| None),
            (_, None) => self.create(marker).await.map(|_| None),
        }
    }
}
