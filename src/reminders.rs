//! The reminder scheduler: every so often, what `domain::reminders::due` says is due is
//! recorded in the ledger and then posted.
//!
//! Recording comes first and decides who posts. Each reminder is submitted as
//! `Command::Remind` by the system, under a delivery id that names the reminder
//! (`reminder:<ticket>:<kind>:<stage start>`), so however many replicas run this loop the
//! ledger records it once: the replica whose append is `Accepted` posts it; a replica that
//! lost the race gets `AlreadyRecorded` (same delivery id) or a refusal (it had already caught
//! up), and posts nothing. A refusal of a reminder is not recorded (`Command::records_refusal`),
//! so a reminder that stopped being due between `due` and the append leaves no trace. Because
//! what was sent is in the ledger, a restart sends nothing again.
//!
//! The price of recording first: a replica that dies between its append and its post loses
//! that reminder. A post that fails is tried again on the next ticks, a few times, by the
//! replica that recorded it.
//!
//! Which reminders are due is the domain's pure schedule (`domain::reminders::due`); this loop
//! only records and hands them on. Posting is behind [`ReminderSink`] (Slack's thread replies
//! today, `slack::reminder_sink`), the words come from a `Renderer` of the sink's medium, and
//! time comes from a [`Clock`], so tests drive the loop by hand. `App::build` starts it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::SlackConfig;
use crate::domain::Event;
use crate::domain::reminders::{
    self, Due, QuietHours, ReminderSettings, SettingsError, setting_duration, system_actor,
};
use crate::envelope::{Actor, Source};
use crate::ledger::{Clock, Decision, Ledger, LedgerError, Submission};
use crate::render::Renderer;

/// How often the scheduler looks.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// How many ticks a recorded reminder is offered to the sink before it is given up.
const POST_ATTEMPTS: u32 = 5;

/// Why a sink could not deliver a reminder; it is offered again on the next ticks.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where reminders go (the release message's thread, in Slack).
#[async_trait]
pub trait ReminderSink: Send + Sync {
    /// Delivers `text` (in the sink's medium, starting with its mentions) about `due.ticket`.
    async fn remind(&self, due: &Due, text: &str) -> Result<(), SinkError>;
}

/// The reminder settings of `[slack]`.
pub fn settings(config: &SlackConfig) -> Result<ReminderSettings, SettingsError> {
    Ok(ReminderSettings {
        approval_after: setting_duration(&config.approval_reminder)?,
        deployment_expected: setting_duration(&config.deployment_expected)?,
        stale_lock: setting_duration(&config.stale_lock)?,
        quiet_hours: config
            .quiet_hours
            .as_deref()
            .filter(|q| !q.trim().is_empty())
            .map(QuietHours::parse)
            .transpose()?,
        backup_approvers: config.backup_approvers.clone(),
    })
}

/// The actor reminders are recorded by.
pub fn system() -> Actor {
    Actor {
        id: system_actor(),
        name: "dobrobot".to_string(),
        source: Source::System,
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Recorded by this replica and posted.
    pub posted: Vec<Due>,
    /// Recorded by another replica, or no longer due when decided: not posted here.
    pub skipped: Vec<Due>,
    /// Recorded by this replica, not posted yet (the sink failed); tried again next time.
    pub unposted: usize,
    /// Not recorded (the ledger failed); `due` offers them again next time.
    pub failed: usize,
}

struct Unposted {
    due: Due,
    text: String,
    attempts: u32,
}

pub struct Scheduler {
    ledger: Ledger,
    settings: ReminderSettings,
    renderer: Renderer,
    clock: Clock,
    sink: Arc<dyn ReminderSink>,
    unposted: Vec<Unposted>,
}

impl Scheduler {
    pub fn new(
        ledger: Ledger,
        settings: ReminderSettings,
        renderer: Renderer,
        clock: Clock,
        sink: Arc<dyn ReminderSink>,
    ) -> Self {
        Scheduler {
            ledger,
            settings,
            renderer,
            clock,
            sink,
            unposted: Vec::new(),
        }
    }

    /// Runs [`Scheduler::tick`] every `every` until the task is aborted.
    pub fn spawn(mut self, every: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                self.tick().instrument(info_span!("reminders")).await;
            }
        })
    }

    /// One pass: posts what is left from before, then records and posts what is due now.
    pub async fn tick(&mut self) -> Tick {
        let now = self.clock.now();
        let mut tick = Tick::default();
        for mut left in std::mem::take(&mut self.unposted) {
            if self.post(&left.due, &left.text).await {
                tick.posted.push(left.due);
            } else {
                left.attempts += 1;
                if left.attempts < POST_ATTEMPTS {
                    self.unposted.push(left);
                } else {
                    warn!(ticket = %left.due.ticket, kind = %left.due.kind, "reminder given up");
                }
            }
        }
        let snapshot = self.ledger.snapshot();
        let policy = self.ledger.policy();
        for due in reminders::due(&snapshot.state, now, &self.settings, &policy) {
            match self.record(&due).await {
                Ok(true) => {
                    let text = self.text(&due, now);
                    if self.post(&due, &text).await {
                        tick.posted.push(due);
                    } else {
                        self.unposted.push(Unposted {
                            due,
                            text,
                            attempts: 1,
                        });
                    }
                }
                Ok(false) => tick.skipped.push(due),
                Err(error) => {
                    warn!(ticket = %due.ticket, kind = %due.kind, %error, "reminder not recorded");
                    tick.failed += 1;
                }
            }
        }
        tick.unposted = self.unposted.len();
        tick
    }

    /// Records the reminder; whether this replica recorded it (and so posts it).
    async fn record(&self, due: &Due) -> Result<bool, LedgerError> {
        let submission = Submission {
            command: due.command(),
            actor: system(),
            text: format!("remind {} {}", due.kind, due.ticket),
            delivery: Some(due.delivery()),
            correlation_id: None,
        };
        let outcome = self.ledger.submit(submission).await?;
        Ok(match outcome.result {
            Decision::Accepted(events) => events
                .iter()
                .any(|e| matches!(e, Event::ReminderSent { .. })),
            Decision::AlreadyRecorded => {
                debug!(ticket = %due.ticket, kind = %due.kind, "recorded by another replica");
                false
            }
            Decision::Refused(refusal) => {
                debug!(ticket = %due.ticket, kind = %due.kind, ?refusal, "no longer due");
                false
            }
        })
    }

    async fn post(&self, due: &Due, text: &str) -> bool {
        match self.sink.remind(due, text).await {
            Ok(()) => {
                info!(ticket = %due.ticket, kind = %due.kind, "reminder posted");
                crate::metrics::METRICS.reminder_sent(&due.kind.to_string());
                true
            }
            Err(error) => {
                warn!(ticket = %due.ticket, kind = %due.kind, %error, "reminder not posted");
                false
            }
        }
    }

    /// The reminder in the sink's medium: the people it is for first, then the words.
    pub fn text(&self, due: &Due, now: DateTime<Utc>) -> String {
        let body = self.renderer.reminder(due, now);
        let to: Vec<String> = due.mention.iter().map(|e| self.renderer.role(e)).collect();
        if to.is_empty() {
            body
        } else {
            format!("{} {body}", to.join(" "))
        }
    }
}
