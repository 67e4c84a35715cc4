//! Reminders in Slack: each one a reply in the thread of its release's message; a release
//! without a message (requested before Slack was set up, say) gets it in the release channel.
//! A stale lock's reminder carries a Take over button (`blocks::reminder`).

use crate::domain::Due;
use crate::reminders::{ReminderSink, SinkError};
use async_trait::async_trait;

use super::api::SlackApi;
use super::error::SlackError;
use super::messages::ReleaseMessages;

pub struct ThreadReplies {
    pub api: SlackApi,
    pub messages: std::sync::Arc<ReleaseMessages>,
    pub release_channel: Option<String>,
}

#[async_trait]
impl ReminderSink for ThreadReplies {
    async fn remind(&self, due: &Due, text: &str) -> Result<(), SinkError> {
        let content = super::blocks::reminder(text, &due.ticket, due.kind);
        let posted = self.messages.find(&due.ticket).await?;
        let (channel, thread) = match (&posted, &self.release_channel) {
            (Some(posted), _) => (&posted.channel, Some(posted.ts.as_str())),
            (None, Some(channel)) => (channel, None),
            (None, None) => {
                return Err(SlackError::NotConfigured(
                    "no release message and no release channel to remind in",
                )
                .into());
            }
        };
        self.api.post_message(channel, content, thread).await?;
        Ok(())
    }
}
