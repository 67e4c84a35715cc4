//! Where the deploy gate sends its commands and asks for the queue: the ledger in this process
//! (`Local`, through the same bot as `chat`), or a running `serve` through the write API
//! (`Remote`, with a pipeline token). Both answer in the one JSON shape of a command's reply, so
//! the gate decides the same way whichever it talks to.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::answer::Answer;
use crate::bot::Bot;
use crate::domain::QueueItem;
use crate::envelope::Actor;
use crate::render::Renderer;
use crate::reply::CommandReply;

/// The desk cannot be reached or answered nonsense: nothing is known of the command.
#[derive(Debug, Error)]
pub enum DeskError {
    #[error("{0}")]
    Unavailable(String),
    /// The server refused the request itself (a bad token, a bad request): retrying will not
    /// help.
    #[error("{0}")]
    Rejected(String),
}

#[async_trait]
pub trait Desk: Send + Sync {
    /// Records `text`; `key` is its idempotency key, the same on every retry of one command.
    async fn command(&self, text: &str, key: &str) -> Result<CommandReply, DeskError>;
    /// The open requests now.
    async fn queue(&self) -> Result<Vec<QueueItem>, DeskError>;
}

/// The ledger of this process.
pub struct Local {
    pub bot: Arc<Bot>,
    pub actor: Actor,
    pub renderer: Renderer,
}

#[async_trait]
impl Desk for Local {
    async fn command(&self, text: &str, key: &str) -> Result<CommandReply, DeskError> {
        let delivery = format!("cli:{}:{key}", self.actor.id);
        let answer = self
            .bot
            .handle(self.actor.clone(), text, Some(delivery))
            .await;
        Ok(CommandReply::of(answer, text, &self.bot, &self.renderer))
    }

    async fn queue(&self) -> Result<Vec<QueueItem>, DeskError> {
        match self.bot.handle(self.actor.clone(), "queue", None).await {
            Answer::Queue(items) => Ok(items),
            Answer::CannotRead(reason) => Err(DeskError::Unavailable(reason)),
            other => Err(DeskError::Unavailable(format!(
                "the queue was answered with {other:?}"
            ))),
        }
    }
}

/// A running `serve`, through its write API.
pub struct Remote {
    base: String,
    token: String,
    /// Who the gate means to act as; the server checks it against the token's actor.
    actor: Option<crate::domain::UserId>,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(
        url: &str,
        token: String,
        actor: Option<crate::domain::UserId>,
        timeout: Duration,
    ) -> Result<Remote, DeskError> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(DeskError::Rejected(format!(
                "--server `{url}`: expected an http:// or https:// URL (serve's address)"
            )));
        }
        crate::slack::socket::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| DeskError::Unavailable(format!("an HTTP client: {e}")))?;
        Ok(Remote {
            base,
            token,
            actor,
            http,
        })
    }

    async fn failed(&self, response: reqwest::Response) -> DeskError {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_string))
            .unwrap_or(body);
        let message = format!("{} answered {status}: {detail}", self.base);
        if status.is_server_error() || status.as_u16() == 429 {
            DeskError::Unavailable(message)
        } else {
            DeskError::Rejected(message)
        }
    }
}

#[async_trait]
impl Desk for Remote {
    async fn command(&self, text: &str, key: &str) -> Result<CommandReply, DeskError> {
        let body = crate::http::commands::CommandRequest {
            text: text.to_string(),
            actor: self.actor.clone(),
        };
        let response = self
            .http
            .post(format!("{}/api/v1/commands", self.base))
            .bearer_auth(&self.token)
            .header(crate::http::commands::IDEMPOTENCY_KEY, key)
            .json(&body)
            .send()
            .await
            .map_err(|e| DeskError::Unavailable(format!("sending to {}: {e}", self.base)))?;
        let status = response.status();
        // A refusal (409), a command not understood (400) or not recorded (503) is still a
        // command reply; anything else that failed is a problem.
        let is_reply = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !status.is_success() && !is_reply {
            return Err(self.failed(response).await);
        }
        response
            .json::<CommandReply>()
            .await
            .map_err(|e| DeskError::Unavailable(format!("reading {}'s reply: {e}", self.base)))
    }

    async fn queue(&self) -> Result<Vec<QueueItem>, DeskError> {
        #[derive(serde::Deserialize)]
        struct Page {
            items: Vec<QueueItem>,
        }
        let response = self
            .http
            .get(format!("{}/api/v1/queue", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| DeskError::Unavailable(format!("asking {}: {e}", self.base)))?;
        if !response.status().is_success() {
            return Err(self.failed(response).await);
        }
        let page: Page = response
            .json()
            .await
            .map_err(|e| DeskError::Unavailable(format!("reading {}'s queue: {e}", self.base)))?;
        Ok(page.items)
    }
}
