//! Release markers where people watch graphs: each deployment's start, finish and rollback
//! delivered to Grafana (an annotation that becomes a region), PagerDuty (a change event) and
//! signed webhooks, from the ledger with a checkpoint, at least once.
//!
//! The shape is the Slack presenter's: the ledger is the truth and the sinks a projection of
//! it. `outbox` is the worker every `serve` replica runs; `deliveries` is the stream in the same
//! store that records the lease (one replica delivers), each sink's checkpoint, dead letters
//! and a start's annotation id; `marker` is what each sink is told; `attempt` is one HTTP try
//! and whether its failure is worth another. A sink (`grafana`, `pagerduty`, `webhook`) only
//! turns a marker into its receiver's request: when to retry, record or give up is decided
//! once, in the outbox.

pub mod attempt;
pub mod deliveries;
pub mod grafana;
pub mod marker;
pub mod outbox;
pub mod pagerduty;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::config::SinksConfig;
use crate::domain::parse_duration;
use crate::store::StoreError;

pub use attempt::Failure;
pub use deliveries::{Annotated, Deliveries};
pub use marker::Marker;
pub use outbox::Outbox;

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("config: sinks: {0}")]
    Config(String),
    #[error("the deliveries stream: {0}")]
    Store(#[from] StoreError),
    #[error("a record cannot be read: {0}")]
    Decode(String),
    #[error("the deployments model: {0}")]
    Models(String),
}

/// What the deliveries stream knows that a sink may need for a marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The Grafana annotation of the deployment's start, for a finish or rollback.
    pub start_annotation: Option<i64>,
}

/// A receiver of release markers.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Names the sink in its checkpoint, dead letters, logs and metrics.
    fn name(&self) -> &str;

    /// One attempt to deliver `marker`; what the deliveries stream should remember of it.
    async fn deliver(&self, marker: &Marker, memory: &Memory)
    -> Result<Option<Annotated>, Failure>;
}

/// How delivering goes, from `[sinks]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub attempts: u32,
    pub lease: Duration,
    pub timeout: Duration,
    pub retry_delay: Duration,
}

impl Delivery {
    pub fn from_config(config: &SinksConfig) -> Result<Delivery, SinkError> {
        let duration = |key: &str, text: &str| {
            parse_duration(text)
                .ok()
                .and_then(|d| d.to_std().ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| SinkError::Config(format!("{key} = `{text}` is not a duration")))
        };
        if config.attempts == 0 {
            return Err(SinkError::Config("attempts must be 1 or more".into()));
        }
        Ok(Delivery {
            attempts: config.attempts,
            lease: duration("lease", &config.lease)?,
            timeout: duration("timeout", &config.timeout)?,
            retry_delay: duration("retry_delay", &config.retry_delay)?,
        })
    }
}

/// The configured sinks, each with its secret; a configured sink without one is an error.
/// `tracker_url` links a ticket from PagerDuty's change event.
pub fn configured(
    config: &SinksConfig,
    delivery: &Delivery,
    tracker_url: Option<&str>,
) -> Result<Vec<Arc<dyn Sink>>, SinkError> {
    crate::slack::socket::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(delivery.timeout)
        .user_agent(concat!("dobrobot/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SinkError::Config(format!("the HTTP client: {e}")))?;
    let missing = |sink: &str, env: &str| {
        SinkError::Config(format!(
            "{sink} is configured but its secret is not: set the environment variable {env}"
        ))
    };
    let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
    if let Some(grafana) = &config.grafana {
        let token = grafana
            .token
            .clone()
            .ok_or_else(|| missing("[sinks.grafana]", "GRAFANA_TOKEN"))?;
        sinks.push(Arc::new(grafana::Grafana::new(
            http.clone(),
            grafana,
            token,
        )));
    }
    if let Some(pagerduty) = &config.pagerduty {
        let key = pagerduty
            .routing_key
            .clone()
            .ok_or_else(|| missing("[sinks.pagerduty]", "PAGERDUTY_ROUTING_KEY"))?;
        sinks.push(Arc::new(pagerduty::PagerDuty::new(
            http.clone(),
            &pagerduty.url,
            key,
            tracker_url.map(str::to_string),
        )));
    }
    let mut names = std::collections::BTreeSet::new();
    for webhook in &config.webhooks {
        if webhook.name.trim().is_empty() || !names.insert(webhook.name.clone()) {
            return Err(SinkError::Config(format!(
                "each [[sinks.webhooks]] needs a name of its own (`{}`)",
                webhook.name
            )));
        }
        let secret = webhook.secret.clone().ok_or_else(|| {
            missing(
                &format!("the webhook `{}`", webhook.name),
                &webhook.secret_env,
            )
        })?;
        sinks.push(Arc::new(webhook::Webhook::new(
            http.clone(),
            &webhook.name,
            &webhook.url,
            secret,
        )));
    }
    Ok(sinks)
}
