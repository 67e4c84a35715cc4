//! The Slack Web API calls dobrobot makes, on slack-morphism's client, each retried after a
//! `429` for as long as Slack's `Retry-After` says.
//!
//! slack-morphism parses `Retry-After` into `SlackRateLimitError::retry_after`; its own rate
//! controller would also throttle every `chat.postMessage` to one a second per channel, which a
//! release bot posting a handful of messages does not need, so the retry is a small loop here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tracing::warn;

use super::error::SlackError;
use crate::metrics::METRICS;

/// How often one call is tried after `429`s, and the longest wait honoured.
const MAX_ATTEMPTS: usize = 5;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

pub type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// Slack's Web API with the bot token.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<Client>,
    token: SlackApiToken,
}

/// A Slack client for `api_url` (`https://slack.com/api/`, or a local fake over plain http).
pub fn client(api_url: &str) -> Result<Client, SlackError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| SlackError::Api(format!("TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let connector = SlackClientHyperConnector::with_connector(https)
        .with_slack_api_url(api_url.trim_end_matches('/'));
    Ok(SlackClient::new(connector))
}

impl SlackApi {
    pub fn new(api_url: &str, bot_token: &str) -> Result<Self, SlackError> {
        Ok(SlackApi {
            client: Arc::new(client(api_url)?),
            token: SlackApiToken::new(SlackApiTokenValue(bot_token.to_string())),
        })
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Posts a message; returns its ts.
    pub async fn post_message(
        &self,
        channel: &str,
        content: SlackMessageContent,
        thread_ts: Option<&str>,
    ) -> Result<String, SlackError> {
        let request = SlackApiChatPostMessageRequest::new(SlackChannelId(channel.into()), content)
            .opt_thread_ts(thread_ts.map(|ts| SlackTs(ts.into())));
        let response = retrying("chat.postMessage", || async {
            let session = self.client.open_session(&self.token);
            session.chat_post_message(&request).await
        })
        .await?;
        Ok(response.ts.0)
    }

    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> Result<(), SlackError> {
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel.into()),
            content,
            SlackTs(ts.into()),
        );
        retrying("chat.update", || async {
            let session = self.client.open_session(&self.token);
            session.chat_update(&request).await
        })
        .await?;
        Ok(())
    }

    /// A message only `user` sees, in `channel` (and in a thread when `thread_ts` is given).
    /// Publishes `user`'s App Home tab.
    pub async fn publish_home(&self, user: &str, view: SlackView) -> Result<(), SlackError> {
        let request = SlackApiViewsPublishRequest::new(SlackUserId(user.into()), view);
        retrying("views.publish", || async {
            let session = self.client.open_session(&self.token);
            session.views_publish(&request).await
        })
        .await?;
        Ok(())
    }

    /// Opens a modal for the interaction whose trigger id this is (Slack takes each once,
    /// within 3 seconds of the interaction).
    pub async fn open_view(&self, trigger_id: &str, view: SlackView) -> Result<(), SlackError> {
        let request = SlackApiViewsOpenRequest::new(SlackTriggerId(trigger_id.into()), view);
        retrying("views.open", || async {
            let session = self.client.open_session(&self.token);
            session.views_open(&request).await
        })
        .await?;
        Ok(())
    }

    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<(), SlackError> {
        let request = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId(channel.into()),
            SlackUserId(user.into()),
            SlackMessageContent::new().with_text(text.into()),
        )
        .opt_thread_ts(thread_ts.map(|ts| SlackTs(ts.into())));
        retrying("chat.postEphemeral", || async {
            let session = self.client.open_session(&self.token);
            session.chat_post_ephemeral(&request).await
        })
        .await?;
        Ok(())
    }

    /// Answers a slash command through its `response_url`, visible to the person only.
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackError> {
        let url: SlackResponseUrl = SlackResponseUrl(
            response_url
                .parse()
                .map_err(|e| SlackError::Api(format!("response_url: {e}")))?,
        );
        let request = SlackApiPostWebhookMessageRequest::new(
            SlackMessageContent::new().with_text(text.into()),
        );
        retrying("response_url", || async {
            self.client.respond_to_event(&url, &request).await
        })
        .await?;
        Ok(())
    }

    /// The DM channel with `user`.
    pub async fn open_dm(&self, user: &str) -> Result<String, SlackError> {
        let request =
            SlackApiConversationsOpenRequest::new().with_users(vec![SlackUserId(user.into())]);
        let response = retrying("conversations.open", || async {
            let session = self.client.open_session(&self.token);
            session.conversations_open(&request).await
        })
        .await?;
        Ok(response.channel.id.0)
    }

    /// `users.info`: the name to record and show (display name, else real name, else handle).
    pub async fn user_name(&self, user: &str) -> Result<Option<String>, SlackError> {
        let request = SlackApiUsersInfoRequest::new(SlackUserId(user.into()));
        let response = retrying("users.info", || async {
            let session = self.client.open_session(&self.token);
            session.users_info(&request).await
        })
        .await?;
        let user = response.user;
        let profile = user.profile.as_ref();
        let non_empty = |s: Option<&String>| s.filter(|s| !s.trim().is_empty()).cloned();
        Ok(non_empty(profile.and_then(|p| p.display_name.as_ref()))
            .or_else(|| non_empty(profile.and_then(|p| p.real_name.as_ref())))
            .or_else(|| non_empty(user.real_name.as_ref()))
            .or_else(|| non_empty(user.name.as_ref())))
    }

    /// `usergroups.users.list`: the user ids in a user group (`S...`).
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, SlackError> {
        let request = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId(group.into()));
        let response = retrying("usergroups.users.list", || async {
            let session = self.client.open_session(&self.token);
            session.usergroups_users_list(&request).await
        })
        .await?;
        Ok(response.users.into_iter().map(|u| u.0).collect())
    }
}

/// Runs `call` until it is not rate limited, waiting `Retry-After` (1 s if absent) between
/// attempts.
async fn retrying<T, F, Fut>(method: &'static str, call: F) -> Result<T, SlackError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ClientResult<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => {
                METRICS.slack_call(method, false);
                return Ok(value);
            }
            Err(SlackClientError::RateLimitError(limit)) if attempt < MAX_ATTEMPTS => {
                METRICS.slack_call(method, true);
                let wait = limit
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_RETRY_AFTER);
                warn!(method, ?wait, attempt, "rate limited by Slack; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) => {
                METRICS.slack_call(method, true);
                return Err(SlackError::Call {
                    method,
                    detail: error.to_string(),
                });
            }
        }
    }
}
