//! The work after Slack's acknowledgement, the same for both transports: run the person's
//! command through the bot (with the delivery id, so a redelivery records nothing new), then
//! show the outcome in Slack.
//!
//! - Recorded steps of a release update its one message in the release channel (posted when
//!   the release is requested, `chat.update` after), add a reply in that message's thread, and
//!   notify whom the step concerns (`notify`).
//! - Refusals, commands not understood, and commands not recorded (the ledger unavailable) go
//!   to the person alone, ephemeral; the release message does not change.
//! - Queries are answered where they were asked (the mention's thread, the DM, ephemeral for a
//!   slash command).
//!
//! Nothing here decides: whether a command may run is the ledger's answer.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use slack_morphism::prelude::*;
use tokio::sync::Mutex;
use tracing::{Instrument, info, info_span, warn};

use crate::bot::{Bot, Handled, ReplyKind};
use crate::config::Config;
use crate::domain::state::{AdminPresence, Freeze, Stage};
use crate::domain::{Event, Policy, RoleEntry, State, TicketKey, UserId};
use crate::envelope::{Actor, Recorded, Source};
use crate::ledger::{Decision, Outcome};

use super::api::SlackApi;
use super::blocks::{Links, Status, person, release_message};
use super::directory::{Directory, mention_entry};
use super::error::SlackError;
use super::inbound::{Inbound, ReplyTo};
use super::messages::{Card, Posted, ReleaseMessages};
use super::notify::{Audience, Delivery, Notice, notices};
use super::waitlist::Waitlist;

/// How often the members of the configured user groups are asked again.
const GROUP_REFRESH: Duration = Duration::from_secs(10 * 60);

pub struct SlackFront {
    bot: Arc<Bot>,
    api: SlackApi,
    directory: Directory,
    messages: ReleaseMessages,
    links: Links,
    release_channel: Option<String>,
    delivery: Delivery,
    /// Held while a release's message is updated and its thread replied to.
    in_order: Mutex<()>,
    /// Who to tell when a deployment ends and frees the locks they waited for.
    waitlist: Waitlist,
    /// The ledger as `follow_ledger` has read it: newer than the writer's snapshot when
    /// another process has appended since this one last wrote.
    followed: std::sync::Mutex<Followed>,
}

/// The state as of the last event the follower read.
#[derive(Default)]
struct Followed {
    revision: Option<u64>,
    state: Arc<State>,
}

impl SlackFront {
    /// Connects to Slack with the bot token, expands the configured user groups into the
    /// ledger's policy (and keeps them fresh), and loads where the release messages are.
    pub async fn open(config: &Config, bot: Arc<Bot>) -> Result<Arc<SlackFront>, SlackError> {
        let token = config
            .slack
            .bot_token
            .as_deref()
            .ok_or(SlackError::NotConfigured("SLACK_BOT_TOKEN is not set"))?;
        let api = SlackApi::new(&config.slack.api_url, token)?;
        let directory = Directory::new(api.clone(), bot.policy.clone(), config.roles.clone());
        let messages = ReleaseMessages::open(bot.store.clone(), &config.environment).await?;
        let waitlist = Waitlist::new(
            bot.store.clone(),
            bot.stream.clone(),
            config.tracker_url.clone(),
            Arc::new(api.clone()),
        );
        let front = Arc::new(SlackFront {
            api,
            directory,
            messages,
            links: Links {
                tracker_url: config.tracker_url.clone(),
            },
            release_channel: config.slack.release_channel.clone(),
            delivery: Delivery::from_config(&config.slack.notify),
            in_order: Mutex::new(()),
            waitlist,
            followed: std::sync::Mutex::new(Followed::default()),
            bot,
        });
        front.refresh_roles().await;
        tokio::spawn(keep_roles_fresh(Arc::downgrade(&front)));
        Ok(front)
    }

    /// The Web API client, for the transports (Socket Mode opens its connection with it).
    pub fn api(&self) -> &SlackApi {
        &self.api
    }

    /// Asks Slack for the user groups' members and hands the expanded roles to the ledger.
    pub async fn refresh_roles(&self) {
        self.directory.refresh_groups().await;
        self.bot
            .ledger
            .set_policy(Arc::new(self.directory.expanded_policy()));
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
            let handled = self
                .bot
                .handle_with_outcome(actor, &inbound.text, Some(inbound.delivery.clone()))
                .await;
            if let Err(error) = self.show(&inbound, handled).await {
                warn!(%error, "the outcome could not be shown in Slack");
            }
        }
        .instrument(span)
        .await
    }

    /// Folds one event of the ledger, in order, into what the front knows of its newest
    /// state. `follow_ledger` calls it for every event, history included.
    pub fn fold(&self, recorded: &Recorded) {
        let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
        if followed.revision.is_some_and(|r| r >= recorded.revision) {
            return;
        }
        Arc::make_mut(&mut followed.state).evolve(&recorded.event, recorded.metadata.recorded_at);
        followed.revision = Some(recorded.revision);
    }

    /// Shows a step recorded other than through this front (the CLI, another process): the
    /// release's message is drawn again from the newest state and the step's text goes in its
    /// thread, with the notices. Steps from Slack were shown by the front that handled them,
    /// reminders by the scheduler, and refusals concern only who was refused: those are
    /// skipped. Expects `recorded` to have been folded (`fold`) first. Never fails: what
    /// cannot be shown is logged.
    pub async fn show_recorded(&self, recorded: &Recorded) {
        if matches!(
            recorded.metadata.actor.source,
            Source::Slack | Source::System
        ) || matches!(recorded.event, Event::CommandRefused { .. })
        {
            return;
        }
        let span = info_span!(
            "recorded_elsewhere",
            revision = recorded.revision,
            event = recorded.event.type_name(),
            actor = %recorded.metadata.actor.id,
        );
        if let Err(error) = self.show_elsewhere(recorded).instrument(span).await {
            warn!(%error, "a step recorded elsewhere could not be shown in Slack");
        }
    }

    async fn show_elsewhere(&self, recorded: &Recorded) -> Result<(), SlackError> {
        // The state right after the step: the follower's, which has folded it.
        let folded = {
            let followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            followed
                .revision
                .is_some_and(|r| r >= recorded.revision)
                .then(|| followed.state.clone())
        };
        let state = match folded {
            Some(state) => state,
            None => self.newest_state(),
        };
        let policy = self.bot.ledger.policy();
        let events = std::slice::from_ref(&recorded.event);
        let reply = self.bot.renderer.accepted(events, &state, &policy);
        let (tickets, people) = named_in(events, &state, &policy, &recorded.metadata.actor.id);
        let text = self.links.format(
            &reply,
            &tickets.iter().collect::<Vec<_>>(),
            &people.iter().collect::<Vec<_>>(),
        );
        match recorded.event.ticket() {
            Some(ticket) => {
                let channel = self.release_channel.clone();
                self.show_release(channel, ticket, events, &state, recorded.revision, &text)
                    .await?;
            }
            None => {
                if let Some(channel) = &self.release_channel {
                    self.api.post_message(channel, plain(&text), None).await?;
                }
            }
        }
        if let Err(error) = self.waitlist.notify(events, &state, &policy).await {
            warn!(%error, "the waitlist could not be read; nobody was told the lock is free");
        }
        Ok(())
    }

    /// The newest state known: the writer's snapshot, or what the follower read when another
    /// process appended after this one's last write.
    fn newest_state(&self) -> Arc<State> {
        let snapshot = self.bot.ledger.snapshot();
        let followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
        match (followed.revision, snapshot.revision) {
            (Some(f), Some(s)) if f > s => followed.state.clone(),
            (Some(_), None) => followed.state.clone(),
            _ => snapshot.state,
        }
    }

    async fn show(&self, inbound: &Inbound, handled: Handled) -> Result<(), SlackError> {
        let state = match &handled.outcome {
            Some(outcome) => outcome.state.clone(),
            None => self.bot.ledger.snapshot().state,
        };
        let events: &[Event] = match handled.outcome.as_ref().map(|o| &o.result) {
            Some(Decision::Accepted(events)) => events,
            _ => &[],
        };
        let (tickets, people) = named_in(events, &state, &self.bot.ledger.policy(), &inbound.user);
        let text = self.links.format(
            &handled.reply.text,
            &tickets.iter().collect::<Vec<_>>(),
            &people.iter().collect::<Vec<_>>(),
        );
        match (handled.reply.kind, handled.outcome) {
            (ReplyKind::Refused | ReplyKind::Invalid | ReplyKind::Failed, _) => {
                self.tell_privately(inbound, &text).await
            }
            (ReplyKind::Done, None) => self.reply_where_asked(inbound, &text).await,
            (ReplyKind::Done, Some(outcome)) => match &outcome.result {
                Decision::Accepted(events) => self.publish(inbound, events, &outcome, &text).await,
                Decision::AlreadyRecorded => {
                    info!("a redelivery: recorded before, nothing new to show");
                    Ok(())
                }
                Decision::Refused(_) => self.tell_privately(inbound, &text).await,
            },
        }
    }

    /// Shows recorded steps: the release message, its thread, the notices, and the person's
    /// own reply where they asked.
    async fn publish(
        &self,
        inbound: &Inbound,
        events: &[Event],
        outcome: &Outcome,
        text: &str,
    ) -> Result<(), SlackError> {
        let mut threads: Vec<Posted> = Vec::new();
        let mut tickets: Vec<&TicketKey> = events.iter().filter_map(Event::ticket).collect();
        tickets.dedup();
        for ticket in tickets {
            let of_ticket: Vec<Event> = events
                .iter()
                .filter(|e| e.ticket() == Some(ticket))
                .cloned()
                .collect();
            let channel = self.release_channel_for(inbound);
            if let Some(posted) = self
                .show_release(
                    channel,
                    ticket,
                    &of_ticket,
                    &outcome.state,
                    outcome.revision,
                    text,
                )
                .await?
            {
                threads.push(posted);
            }
        }
        let policy = self.bot.ledger.policy();
        if let Err(error) = self.waitlist.notify(events, &outcome.state, &policy).await {
            warn!(%error, "the waitlist could not be read; nobody was told the lock is free");
        }
        if events.iter().all(|e| e.ticket().is_none())
            && let Some(channel) = &self.release_channel
            && inbound.reply_to.channel() != channel
        {
            self.api.post_message(channel, plain(text), None).await?;
        }
        let answered_in_thread = match &inbound.reply_to {
            ReplyTo::Channel { channel, thread_ts } => threads
                .iter()
                .any(|p| &p.channel == channel && &p.ts == thread_ts),
            ReplyTo::Button { .. } => true,
            ReplyTo::DirectMessage { .. } | ReplyTo::SlashCommand { .. } => false,
        };
        if answered_in_thread {
            Ok(())
        } else {
            self.reply_where_asked(inbound, text).await
        }
    }

    /// Updates (or posts, in `channel`) one release's message after a recorded step, replies
    /// in its thread and sends the notices. `state` is the state right after the step, recorded
    /// at `revision`. Returns where the message is.
    async fn show_release(
        &self,
        channel: Option<String>,
        ticket: &TicketKey,
        events: &[Event],
        state: &State,
        revision: u64,
        text: &str,
    ) -> Result<Option<Posted>, SlackError> {
        // One step at a time, drawn from the newest state, so that two quick steps (Accept,
        // then "I'm here") cannot leave the message showing the older one.
        let _in_order = self.in_order.lock().await;
        let latest = self.newest_state();
        let status = match events.iter().rev().find_map(Status::closed_by) {
            Some(closed) => Some(closed),
            // Closed or asked again since: a later step has drawn (or will draw) the message.
            None => match (state.release(ticket), latest.release(ticket)) {
                (Some(ours), Some(newest)) if ours.seq == newest.seq => Some(Status::of(newest)),
                _ => None,
            },
        };
        let requested = events
            .iter()
            .any(|e| matches!(e, Event::ReleaseRequested { .. }));
        let known = if requested {
            None
        } else {
            self.messages.find(ticket).await?
        };
        let posted = match (known, status) {
            (Some(posted), Some(status)) => {
                let content = release_message(&self.links, ticket, &posted.card, &status);
                self.api
                    .update_message(&posted.channel, &posted.ts, content)
                    .await?;
                posted
            }
            (Some(posted), None) => posted,
            (None, None) => return Ok(None),
            (None, Some(status)) => {
                let Some(card) = card_of(state, ticket, events) else {
                    return Ok(None);
                };
                let Some(channel) = channel else {
                    warn!(%ticket, "no release channel configured: the release has no message");
                    return Ok(None);
                };
                let content = release_message(&self.links, ticket, &card, &status);
                let ts = self.api.post_message(&channel, content, None).await?;
                self.messages
                    .record(Posted {
                        ticket: ticket.clone(),
                        request_revision: revision,
                        channel,
                        ts,
                        card,
                    })
                    .await?
            }
        };
        let notices = notices(events, state, Some(&posted.card.requester), &self.links);
        if !requested {
            let mut reply = text.to_string();
            if self.delivery == Delivery::Mention {
                let people: Vec<String> = notices
                    .iter()
                    .filter_map(|n| match &n.to {
                        Audience::Person(p) => Some(person(p)),
                        _ => None,
                    })
                    .collect();
                if !people.is_empty() {
                    reply = format!("{} {reply}", people.join(" "));
                }
            }
            self.api
                .post_message(&posted.channel, plain(&reply), Some(&posted.ts))
                .await?;
        }
        for notice in &notices {
            if let Err(error) = self.notify(&posted, notice).await {
                warn!(%error, ticket = %notice.ticket, "a notice could not be sent");
            }
        }
        Ok(Some(posted))
    }

    async fn notify(&self, posted: &Posted, notice: &Notice) -> Result<(), SlackError> {
        let roles = self.directory.roles();
        let entries: Vec<RoleEntry> = match &notice.to {
            Audience::Approvers => roles.approvers.clone(),
            Audience::Admins => roles.admins.clone(),
            Audience::Person(p) => vec![RoleEntry::User(p.clone())],
        };
        match (self.delivery, &notice.to) {
            // In the thread, a person's notice is the mention on the step's reply.
            (Delivery::Mention, Audience::Person(_)) => Ok(()),
            (Delivery::Mention, _) => {
                let mentions: Vec<String> = entries.iter().map(mention_entry).collect();
                let text = if mentions.is_empty() {
                    notice.text.clone()
                } else {
                    format!("{} {}", mentions.join(" "), notice.text)
                };
                self.api
                    .post_message(&posted.channel, plain(&text), Some(&posted.ts))
                    .await
                    .map(drop)
            }
            (Delivery::Dm, _) => {
                // A DM has no buttons: it points to the release's message.
                let text = format!("{} See <#{}>.", notice.text, posted.channel);
                for user in self.directory.people(&entries) {
                    let dm = self.api.open_dm(&user).await?;
                    self.api.post_message(&dm, plain(&text), None).await?;
                }
                Ok(())
            }
        }
    }

    fn release_channel_for(&self, inbound: &Inbound) -> Option<String> {
        self.release_channel
            .clone()
            .or_else(|| match &inbound.reply_to {
                ReplyTo::DirectMessage { .. } => None,
                other => Some(other.channel().to_string()),
            })
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
            ReplyTo::SlashCommand { .. } | ReplyTo::Button { .. } => {
                self.tell_privately(inbound, text).await
            }
        }
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

/// What a release's message shows of the request: from the request itself, else the state.
fn card_of(state: &State, ticket: &TicketKey, events: &[Event]) -> Option<Card> {
    let requested = events.iter().find_map(|e| match e {
        Event::ReleaseRequested {
            requester,
            services,
            wiki,
            comment,
            need_admin,
            ..
        } => Some(Card {
            requester: requester.clone(),
            services: services.clone(),
            wiki: wiki.clone(),
            comment: comment.clone(),
            need_admin: *need_admin,
        }),
        _ => None,
    });
    requested.or_else(|| {
        state.release(ticket).map(|r| Card {
            requester: r.requester.clone(),
            services: r.services.clone(),
            wiki: r.wiki.clone(),
            comment: r.comment.clone(),
            need_admin: !matches!(r.admin, AdminPresence::NotNeeded),
        })
    })
}

/// The tickets and people a reply may name, to show as tracker links and mentions: those of
/// the command's events, of the open releases, locks and freeze, and the roles.
fn named_in(
    events: &[Event],
    state: &State,
    policy: &Policy,
    asker: &UserId,
) -> (Vec<TicketKey>, Vec<UserId>) {
    let mut tickets = BTreeSet::new();
    let mut people: BTreeSet<UserId> = policy.approvers.union(&policy.admins).cloned().collect();
    people.insert(asker.clone());
    for event in events {
        tickets.extend(event.ticket().cloned());
        people.extend(actors_of(event).into_iter().cloned());
    }
    for release in state.releases.values() {
        tickets.insert(release.ticket.clone());
        people.insert(release.requester.clone());
        match &release.stage {
            Stage::Requested => {}
            Stage::Accepted { approver, .. } => {
                people.insert(approver.clone());
            }
            Stage::Deploying { approver, by, .. } => {
                people.insert(approver.clone());
                people.insert(by.clone());
            }
        }
        if let AdminPresence::Joined { admin, .. } = &release.admin {
            people.insert(admin.clone());
        }
    }
    for held in state.locks.values() {
        tickets.insert(held.ticket.clone());
        people.insert(held.by.clone());
    }
    if let Freeze::On { by, .. } = &state.freeze {
        people.insert(by.clone());
    }
    (tickets.into_iter().collect(), people.into_iter().collect())
}

/// The people an event names.
fn actors_of(event: &Event) -> Vec<&UserId> {
    match event {
        Event::ReleaseRequested { requester, .. } => vec![requester],
        Event::ReleaseApproved { approver, .. } | Event::ReleaseRejected { approver, .. } => {
            vec![approver]
        }
        Event::AdminJoined { admin, .. } => vec![admin],
        Event::ReleaseCancelled { by, .. }
        | Event::DeploymentStarted { by, .. }
        | Event::DeploymentFinished { by, .. }
        | Event::DeploymentRolledBack { by, .. }
        | Event::FreezeStarted { by, .. }
        | Event::FreezeEnded { by } => vec![by],
        _ => Vec::new(),
    }
}

fn plain(text: &str) -> SlackMessageContent {
    SlackMessageContent::new().with_text(text.to_string())
}
