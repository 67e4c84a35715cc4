//! The release messages as a projection of the ledger. Whatever recorded a step (a button, a
//! mention, the CLI, another replica), this shows it in Slack: the release's one message in the
//! release channel (posted on the request, `chat.update`d after), a reply in its thread, the
//! notices to whom it concerns, and the direct messages to those a freed lock held up.
//!
//! It runs in every replica, woken by the follower and by a short tick, and works from the
//! checkpoint in the Slack stream (`messages`): each step past it is claimed there first, so
//! that one replica shows it; a claim whose replica died before it recorded the step as shown
//! is taken over once its lease runs out. So a step recorded just before a crash reaches Slack
//! within seconds, through whichever replica is alive, without waiting for a next step.
//!
//! Refusals concern only who was refused (the front tells them) and reminders are posted by the
//! reminder scheduler: neither is shown here.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use crate::config::Notify;
use crate::domain::{Event, Policy, RoleEntry, State, TicketKey, queue};
use crate::envelope::{self, Recorded};
use crate::follower::Followed;
use crate::ledger::Ledger;
use crate::notices::{Audience, Notice, notices};
use crate::projections::release::Status;
use crate::render::Renderer;
use crate::store::{Direction, EventStore, ReadFrom};

use super::api::SlackApi;
use super::blocks::release_message;
use super::directory::Directory;
use super::error::SlackError;
use super::front::plain;
use super::messages::{Card, Checkpoint, Claim, Posted, ReleaseMessages};

/// How long a claim holds without being renewed; its replica renews it while a step's Slack
/// calls last longer (a rate limit's wait).
pub const CLAIM_LEASE: Duration = Duration::from_secs(2);
/// How often the presenter looks without being woken (for claims of replicas that died).
const TICK: Duration = Duration::from_millis(500);
/// How many ledger events are read at a time while looking for the next step to show.
const PAGE: usize = 256;
/// How often one step is tried before it is given up (a message Slack keeps refusing).
const ATTEMPTS: u32 = 5;

pub struct Presenter {
    pub api: SlackApi,
    pub store: Arc<dyn EventStore>,
    /// The ledger stream.
    pub stream: String,
    pub messages: Arc<ReleaseMessages>,
    pub followed: Followed,
    /// For the rules in force (the roles, expanded from user groups).
    pub ledger: Ledger,
    pub directory: Arc<Directory>,
    pub renderer: Renderer,
    pub release_channel: Option<String>,
    pub delivery: Notify,
    /// This process, in its claims.
    pub replica: String,
}

impl Presenter {
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut changes = self.followed.changes();
            let mut failed: Option<(u64, u32)> = None;
            loop {
                if let Err(error) = self.reconcile(&mut failed).await {
                    warn!(%error, "Slack is behind the ledger; trying again");
                }
                tokio::select! {
                    _ = changes.changed() => {}
                    () = tokio::time::sleep(TICK) => {}
                }
            }
        })
    }

    /// Shows every step past the checkpoint that no other live replica is showing.
    async fn reconcile(&self, failed: &mut Option<(u64, u32)>) -> Result<(), SlackError> {
        let progress = self.followed.progress();
        if !progress.caught_up {
            return Ok(());
        }
        loop {
            let seen = self.messages.checkpoint().await?;
            let Some(shown) = seen.shown else {
                info!(revision = ?progress.revision, "Slack shows the ledger's steps from here on");
                self.messages.start_at(progress.revision, &seen).await?;
                continue;
            };
            let Some(target) = self.followed.progress().revision else {
                return Ok(());
            };
            let next = shown.map_or(0, |r| r + 1);
            if next > target {
                return Ok(());
            }
            let page = self
                .store
                .read(
                    &self.stream,
                    Direction::Forwards,
                    ReadFrom::Revision(next),
                    PAGE,
                )
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            let mut step = None;
            for raw in page.iter().take_while(|e| e.revision <= target) {
                let recorded =
                    envelope::decode(raw).map_err(|e| SlackError::Decode(e.to_string()))?;
                if shows(&recorded.event) {
                    step = Some(recorded);
                    break;
                }
            }
            let Some(step) = step else {
                // Nothing to show up to here: move the checkpoint past it.
                let last = page
                    .iter()
                    .map(|e| e.revision)
                    .filter(|r| *r <= target)
                    .max();
                self.messages.shown(last.or(shown)).await?;
                continue;
            };
            if !self.take(&step, &seen).await? {
                return Ok(());
            }
            let span = info_span!(
                "show_step",
                revision = step.revision,
                event = step.event.type_name(),
                ticket = step.event.ticket().map(|t| t.as_str()),
            );
            let shown = tokio::select! {
                shown = self.show(&step).instrument(span) => shown,
                () = self.renew(step.revision) => unreachable!("renewing never ends"),
            };
            if let Err(error) = shown {
                let attempts = match failed {
                    Some((revision, n)) if *revision == step.revision => *n + 1,
                    _ => 1,
                };
                *failed = Some((step.revision, attempts));
                if attempts < ATTEMPTS {
                    return Err(error);
                }
                warn!(%error, revision = step.revision, "a step could not be shown in Slack; given up");
            }
            self.messages.shown(Some(step.revision)).await?;
        }
    }

    /// Claims `step` unless another replica holds a live claim; whether this replica shows it.
    async fn take(&self, step: &Recorded, seen: &Checkpoint) -> Result<bool, SlackError> {
        if let Some(claim) = &seen.claim {
            if claim.replica == self.replica && claim.revision == step.revision {
                return Ok(true);
            }
            let age = (Utc::now() - claim.at).to_std().unwrap_or_default();
            if age < CLAIM_LEASE {
                return Ok(false);
            }
            info!(revision = claim.revision, replica = %claim.replica, "taking over a step another replica did not finish");
        }
        let claim = Claim {
            revision: step.revision,
            replica: self.replica.clone(),
            at: Utc::now(),
        };
        self.messages.claim(claim, seen).await
    }

    /// Renews this replica's claim on `revision` while its step is being shown.
    async fn renew(&self, revision: u64) {
        loop {
            tokio::time::sleep(CLAIM_LEASE / 3).await;
            let Ok(seen) = self.messages.checkpoint().await else {
                continue;
            };
            let ours = seen
                .claim
                .as_ref()
                .is_some_and(|c| c.revision == revision && c.replica == self.replica);
            if ours {
                let claim = Claim {
                    revision,
                    replica: self.replica.clone(),
                    at: Utc::now(),
                };
                let _ = self.messages.claim(claim, &seen).await;
            }
        }
    }

    async fn show(&self, step: &Recorded) -> Result<(), SlackError> {
        let state = self
            .followed
            .state_at(step.revision)
            .unwrap_or_else(|| Arc::new(self.followed.read(|m| m.live.state.clone())));
        let policy = self.ledger.policy();
        let text = self.renderer.event(&step.event, &state, &policy);
        match step.event.ticket() {
            Some(ticket) => self.show_release(ticket, step, &state, &text).await?,
            None => {
                if let Some(channel) = &self.release_channel {
                    self.api.post_message(channel, plain(&text), None).await?;
                }
            }
        }
        self.tell_waitlist(&step.event, &state, &policy).await;
        self.refresh_homes(&step.event, &policy).await;
        Ok(())
    }

    /// Publishes again the App Home of those a step concerns, so a Home shows the step without
    /// being opened again: who took it, the release's requester (from its message, so also
    /// once the release has ended), and the approvers and admins, whose Homes list what waits
    /// for them. Only Slack users (ids like `U0...`) have a Home.
    async fn refresh_homes(&self, event: &Event, policy: &Policy) {
        let mut users = std::collections::BTreeSet::new();
        users.insert(event.actor().clone());
        if let Some(ticket) = event.ticket()
            && let Ok(Some(posted)) = self.messages.find(ticket).await
        {
            users.insert(posted.card.requester);
        }
        users.extend(policy.approvers.iter().cloned());
        users.extend(policy.admins.iter().cloned());
        for user in users.iter().filter(|u| is_slack_user(u.as_str())) {
            super::front::publish_home(
                &self.api,
                &self.followed,
                &self.ledger,
                &self.renderer,
                user,
            )
            .await;
        }
    }

    /// Draws the release's message as of the step (posting it for a request), replies in its
    /// thread and sends the notices.
    async fn show_release(
        &self,
        ticket: &TicketKey,
        step: &Recorded,
        state: &State,
        text: &str,
    ) -> Result<(), SlackError> {
        let event = &step.event;
        let status = Status::closed_by(event).or_else(|| state.release(ticket).map(Status::of));
        let requested = matches!(event, Event::ReleaseRequested { .. });
        let known = if requested {
            None
        } else {
            self.messages.find(ticket).await?
        };
        let posted = match (known, status) {
            (Some(posted), Some(status)) => {
                let content = release_message(&self.renderer, ticket, &posted.card, &status);
                self.api
                    .update_message(&posted.channel, &posted.ts, content)
                    .await?;
                posted
            }
            (Some(posted), None) => posted,
            (None, None) => return Ok(()),
            (None, Some(status)) => {
                let Some(card) = card_of(state, ticket, event) else {
                    return Ok(());
                };
                let Some(channel) = self.release_channel.clone() else {
                    warn!(%ticket, "no release channel configured: the release has no message");
                    return Ok(());
                };
                let content = release_message(&self.renderer, ticket, &card, &status);
                let ts = self.api.post_message(&channel, content, None).await?;
                self.messages
                    .record(Posted {
                        ticket: ticket.clone(),
                        request_revision: step.revision,
                        channel,
                        ts,
                        card,
                    })
                    .await?
            }
        };
        let notices = notices(event, state, Some(&posted.card.requester));
        if !requested {
            let mut reply = text.to_string();
            if self.delivery == Notify::Group {
                let people: Vec<String> = notices
                    .iter()
                    .filter_map(|n| match &n.to {
                        Audience::Person(p) => Some(self.renderer.person(p)),
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
                warn!(%error, %ticket, "a notice could not be sent");
            }
        }
        Ok(())
    }

    async fn notify(&self, posted: &Posted, notice: &Notice) -> Result<(), SlackError> {
        // The roles as the ledger records them now (a reload or a group's change included).
        let policy = self.ledger.policy();
        let roles = &policy.roles;
        let entries: Vec<RoleEntry> = match &notice.to {
            Audience::Approvers => roles.approvers.clone(),
            Audience::Admins => roles.admins.clone(),
            Audience::Person(p) => vec![RoleEntry::User(p.clone())],
        };
        match (self.delivery, &notice.to) {
            // In the thread, a person's notice is the mention on the step's reply.
            (Notify::Group, Audience::Person(_)) => Ok(()),
            (Notify::Group, _) => {
                let mentions: Vec<String> = entries.iter().map(|e| self.renderer.role(e)).collect();
                let words = self.renderer.notice(notice);
                let text = if mentions.is_empty() {
                    words
                } else {
                    format!("{} {words}", mentions.join(" "))
                };
                self.api
                    .post_message(&posted.channel, plain(&text), Some(&posted.ts))
                    .await
                    .map(drop)
            }
            (Notify::Dm, _) => {
                // A DM has no buttons: it points to the release's message.
                let text = format!(
                    "{} See <#{}>.",
                    self.renderer.notice(notice),
                    posted.channel
                );
                for user in self.directory.people(&entries) {
                    let dm = self.api.open_dm(&user).await?;
                    self.api.post_message(&dm, plain(&text), None).await?;
                }
                Ok(())
            }
        }
    }

    /// When `event` ends a deployment: a direct message to each person a lock of it held up,
    /// in the order they asked, with what their release still waits for.
    async fn tell_waitlist(&self, event: &Event, state: &State, policy: &Policy) {
        let freed = match event {
            Event::DeploymentFinished { ticket, .. }
            | Event::DeploymentRolledBack { ticket, .. }
            | Event::DeploymentAbandoned { ticket, .. } => ticket,
            _ => return,
        };
        let waiting = self.followed.read(|m| m.waitlist.waiting_on(freed));
        let items = queue(state, policy);
        for (place, (user, ticket)) in waiting.into_iter().enumerate() {
            let Some(item) = items.iter().find(|i| i.ticket == ticket) else {
                continue;
            };
            let text = self.renderer.waitlist_freed(freed, item, place + 1);
            let sent = match self.api.open_dm(user.as_str()).await {
                Ok(dm) => self
                    .api
                    .post_message(&dm, plain(&text), None)
                    .await
                    .map(drop),
                Err(error) => Err(error),
            };
            match sent {
                Ok(()) => info!(%user, %ticket, %freed, "waitlist told"),
                Err(error) => warn!(%user, %ticket, %error, "waitlist DM not sent"),
            }
        }
    }
}

/// A Slack user id (`U0BOB`, `W0ENTERPRISE`), not a name from the config or the CLI.
fn is_slack_user(id: &str) -> bool {
    id.len() > 1
        && id.starts_with(['U', 'W'])
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Whether the presenter shows this event: every step of the release process, not refusals
/// (the person was told), reminders (the scheduler posted them) nor a runner's signs of life
/// (they change nothing people wait for).
/// Whether a step is shown in Slack. A change of the rules is not: every start of a process
/// with new rules, every change of a user group's members would post to the release channel;
/// it is in the history and on the timeline page.
fn shows(event: &Event) -> bool {
    !matches!(
        event,
        Event::CommandRefused { .. }
            | Event::ReminderSent { .. }
            | Event::DeploymentAlive { .. }
            | Event::PolicyChanged { .. }
    )
}

/// What a release's message shows of the request: from the request itself, else the state.
fn card_of(state: &State, ticket: &TicketKey, event: &Event) -> Option<Card> {
    if let Event::ReleaseRequested {
        requester,
        services,
        wiki,
        comment,
        need_admin,
        tracker,
        ..
    } = event
    {
        return Some(Card {
            requester: requester.clone(),
            services: services.clone(),
            wiki: wiki.clone(),
            comment: comment.clone(),
            need_admin: *need_admin,
            tracker: tracker.clone(),
        });
    }
    state.release(ticket).map(|r| Card {
        requester: r.requester.clone(),
        services: r.services.clone(),
        wiki: r.wiki.clone(),
        comment: r.comment.clone(),
        need_admin: !matches!(r.admin, crate::domain::state::AdminPresence::NotNeeded),
        tracker: r.tracker.clone(),
    })
}
