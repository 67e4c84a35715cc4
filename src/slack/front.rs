//! What a person in Slack gets back for what they typed or pressed, the same for both
//! transports: the command goes through the bot (with the delivery id, so a redelivery records
//! nothing new), and the answer is rendered as Slack mrkdwn and put where it belongs.
//!
//! - Refusals, commands not understood, and commands not recorded (the ledger unavailable) go
//!   to the person alone, ephemeral.
//! - A recorded step is shown by the presenter (the release message, its thread, the notices),
//!   as every step is whoever recorded it; the person also gets the answer where they asked,
//!   unless they asked in that thread or pressed the message's button.
//! - Queries are answered where they were asked (the mention's thread, the DM, ephemeral for a
//!   slash command).
//!
//! Nothing here decides: whether a command may run is the ledger's answer.

use std::sync::{Arc, Weak};
use std::time::Duration;

use slack_morphism::prelude::*;
use tracing::{Instrument, info, info_span, warn};

use crate::answer::{Answer, ReplyKind};
use crate::bot::Bot;
use crate::envelope::{Actor, Source};
use crate::render::Renderer;

use super::api::SlackApi;
use super::directory::Directory;
use super::error::SlackError;
use super::inbound::{Inbound, ReplyTo};
use super::interact::Work;
use super::messages::ReleaseMessages;
use super::views;
use crate::domain::{Policy, PolicyCause, UserId};

/// How long an App Home waits for the read models to have what was just written.
const HOME_WAIT: Duration = Duration::from_secs(2);

/// How often the members of the configured user groups are asked again.
const GROUP_REFRESH: Duration = Duration::from_secs(10 * 60);

pub struct SlackFront {
    pub bot: Arc<Bot>,
    pub api: SlackApi,
    pub directory: Arc<Directory>,
    pub messages: Arc<ReleaseMessages>,
    pub renderer: Renderer,
}

impl SlackFront {
    /// Expands the configured user groups into the ledger's policy (and keeps them fresh).
    pub async fn start(front: SlackFront) -> Arc<SlackFront> {
        let front = Arc::new(front);
        front.refresh_roles().await;
        tokio::spawn(keep_roles_fresh(Arc::downgrade(&front)));
        front
    }

    /// The Web API client, for the transports (Socket Mode opens its connection with it).
    pub fn api(&self) -> &SlackApi {
        &self.api
    }

    /// Asks Slack for the user groups' members and hands the expanded roles to the ledger.
    /// A change of a group's members is recorded in the ledger (`PolicyChanged`).
    pub async fn refresh_roles(&self) {
        let policy = self.bot.ledger.policy();
        self.directory.refresh_groups(&policy.roles).await;
        let expanded = Policy::clone(&policy).with_members(&self.directory.groups());
        if let Err(error) =
            crate::app::adopt_policy(&self.bot.ledger, expanded, PolicyCause::Directory).await
        {
            warn!(%error, "the user groups' members could not be recorded");
        }
    }

    /// Runs one command and answers it in Slack. Never fails: what cannot be shown is logged.
    pub async fn handle(&self, inbound: Inbound) {
        let span = info_span!(
            "slack_delivery",
            event_id = %inbound.delivery,
            user = %inbound.user,
        );
        async {
            let name = self.directory.display_name(&inbound.user).await;
            let actor = Actor {
                id: inbound.user.clone(),
                name,
                source: Source::Slack,
            };
            let answer = self
                .bot
                .handle(actor, &inbound.text, Some(inbound.delivery.clone()))
                .await;
            if let Err(error) = self.reply(&inbound, &answer).await {
                warn!(%error, "the answer could not be shown in Slack");
            }
        }
        .instrument(span)
        .await
    }

    async fn reply(&self, inbound: &Inbound, answer: &Answer) -> Result<(), SlackError> {
        let text = self.renderer.answer(answer);
        match (answer.kind(), answer) {
            (ReplyKind::Refused | ReplyKind::Invalid | ReplyKind::Failed, _) => {
                self.tell_privately(inbound, &text).await
            }
            (_, Answer::AlreadyRecorded) => {
                info!("a redelivery: recorded before, nothing new to show");
                Ok(())
            }
            (_, Answer::Accepted { events, .. }) if self.shown_there(inbound, events).await? => {
                Ok(())
            }
            _ => self.reply_where_asked(inbound, &text).await,
        }
    }

    /// Whether the presenter's thread reply is where the person asked: they pressed the
    /// release message's button, or wrote in its thread.
    async fn shown_there(
        &self,
        inbound: &Inbound,
        events: &[crate::domain::Event],
    ) -> Result<bool, SlackError> {
        match &inbound.reply_to {
            ReplyTo::Button { .. } => Ok(true),
            ReplyTo::Channel { channel, thread_ts } => {
                for ticket in events.iter().filter_map(|e| e.ticket()) {
                    if let Some(posted) = self.messages.find(ticket).await?
                        && &posted.channel == channel
                        && &posted.ts == thread_ts
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            ReplyTo::DirectMessage { .. }
            | ReplyTo::SlashCommand { .. }
            | ReplyTo::Person { .. } => Ok(false),
        }
    }

    /// To the person alone: ephemeral in a channel, in the DM when they wrote there.
    async fn tell_privately(&self, inbound: &Inbound, text: &str) -> Result<(), SlackError> {
        let user = inbound.user.as_str();
        match &inbound.reply_to {
            ReplyTo::Channel { channel, thread_ts } => {
                self.api
                    .post_ephemeral(channel, user, text, Some(thread_ts))
                    .await
            }
            ReplyTo::DirectMessage { channel } => self
                .api
                .post_message(channel, plain(text), None)
                .await
                .map(drop),
            ReplyTo::Button { channel, .. } => {
                self.api.post_ephemeral(channel, user, text, None).await
            }
            ReplyTo::Person { user } => {
                let channel = self.api.open_dm(user.as_str()).await?;
                self.api
                    .post_message(&channel, plain(text), None)
                    .await
                    .map(drop)
            }
            ReplyTo::SlashCommand {
                channel,
                response_url,
            } => {
                let ephemeral = self.api.post_ephemeral(channel, user, text, None).await;
                match (ephemeral, response_url) {
                    // Not a member of the channel: the command's own response URL still works.
                    (Err(error), Some(url)) => {
                        warn!(%error, "chat.postEphemeral failed; answering on response_url");
                        self.api.respond(url, text).await
                    }
                    (result, _) => result,
                }
            }
        }
    }

    /// Where the person asked: the mention's thread, the DM; ephemeral otherwise.
    async fn reply_where_asked(&self, inbound: &Inbound, text: &str) -> Result<(), SlackError> {
        match &inbound.reply_to {
            ReplyTo::Channel { channel, thread_ts } => self
                .api
                .post_message(channel, plain(text), Some(thread_ts))
                .await
                .map(drop),
            ReplyTo::DirectMessage { channel } => self
                .api
                .post_message(channel, plain(text), None)
                .await
                .map(drop),
            ReplyTo::SlashCommand { .. } | ReplyTo::Button { .. } | ReplyTo::Person { .. } => {
                self.tell_privately(inbound, text).await
            }
        }
    }
}

impl SlackFront {
    /// Does what a delivery asked, after Slack has its acknowledgement. Never fails: what
    /// cannot be done is logged.
    pub async fn perform(&self, work: Work) {
        match work {
            Work::Run(inbound) => {
                let from_home = match &inbound.reply_to {
                    ReplyTo::Person { user } => Some(user.clone()),
                    _ => None,
                };
                self.handle(inbound).await;
                // A step taken from the App Home (or a modal) changes what it shows.
                if let Some(user) = from_home {
                    self.publish_home(&user).await;
                }
            }
            Work::Home(user) => self.publish_home(&user).await,
            Work::Open { trigger_id, view } => {
                if let Err(error) = self.api.open_view(&trigger_id, view).await {
                    warn!(%error, "a modal could not be opened");
                }
            }
        }
    }

    /// Publishes `user`'s App Home tab, once the read models have what this process wrote (a
    /// step just taken from the Home shows in it).
    pub async fn publish_home(&self, user: &UserId) {
        let written = self.bot.ledger.snapshot().revision;
        if !self.bot.followed.reached(written, HOME_WAIT).await {
            warn!("the read models are behind the ledger; the App Home may lag a step");
        }
        publish_home(
            &self.api,
            &self.bot.followed,
            &self.bot.ledger,
            &self.renderer,
            user,
        )
        .await;
    }

    /// The configured services, for the request modal.
    pub fn services(&self) -> Vec<String> {
        let policy = self.bot.ledger.policy();
        policy.services().iter().map(ToString::to_string).collect()
    }
}

/// Publishes `user`'s App Home tab from the live queue and locks the follower keeps (the
/// front after a step taken from the Home, the presenter after each step it shows).
pub async fn publish_home(
    api: &SlackApi,
    followed: &crate::follower::Followed,
    ledger: &crate::ledger::Ledger,
    renderer: &Renderer,
    user: &UserId,
) {
    let policy = ledger.policy();
    let (queue, locks) = followed.read(|m| (m.live.queue(&policy), m.live.locks()));
    let view = views::home(
        renderer,
        user,
        &queue,
        &locks,
        &policy,
        chrono::Utc::now(),
        renderer.page_url(),
    );
    if let Err(error) = api.publish_home(user.as_str(), view).await {
        warn!(%error, user = %user, "the App Home could not be published");
    }
}

async fn keep_roles_fresh(front: Weak<SlackFront>) {
    loop {
        tokio::time::sleep(GROUP_REFRESH).await;
        let Some(front) = front.upgrade() else {
            return;
        };
        front.refresh_roles().await;
    }
}

/// A message of plain mrkdwn text.
pub fn plain(text: &str) -> SlackMessageContent {
    SlackMessageContent::new().with_text(text.to_string())
}
