//! Reminders: what in the release process has waited too long, and whom to tell.
//!
//! A reminder is about one stage of one release: `approval` and `escalation` about a request
//! waiting for approval, `overdue_deployment` and `stale_lock` about a deployment. [`due`] is a
//! pure function of the state, the time and the settings; whoever sends reminders (the Slack
//! scheduler) records each one through `Command::Remind` before telling anyone, so that the
//! ledger, not a replica's memory, knows what was sent: the state keeps the reminders sent in a
//! release's current stage, `decide` refuses a second one, and [`Due::delivery`] names the
//! reminder the same way on every replica so that two replicas racing append it once.
//!
//! Quiet hours hold everything back: nothing is due while they last, and what fell due in them
//! is due when they end. When the escalation is due the plain reminder is skipped, so a
//! scheduler that was down for a while does not send both at once.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::duration::parse_duration;
use super::policy::Policy;
use super::state::{AdminPresence, Release, Stage, State};
use super::types::{LockKey, ReminderKind, RoleEntry, TicketKey, UserId};

/// The id reminder commands are recorded under (`Source::System` in the metadata).
pub fn system_actor() -> UserId {
    UserId::parse("dobrobot").expect("a valid user id")
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingsError {
    #[error("`{0}` is not a positive duration (expected something like 30m, 1h30m, 90s, 2d)")]
    Duration(String),
    #[error("`{0}` is not a UTC time window (expected HH:MM-HH:MM, e.g. 22:00-08:00)")]
    QuietHours(String),
}

/// A reminder setting's duration: anything the one duration grammar reads
/// ([`parse_duration`]), but more than zero, since a reminder due at once would go out on every
/// tick.
pub fn setting_duration(text: &str) -> Result<TimeDelta, SettingsError> {
    match parse_duration(text) {
        Ok(duration) if duration > TimeDelta::zero() => Ok(duration),
        _ => Err(SettingsError::Duration(text.to_string())),
    }
}

/// A daily window in UTC, `start` included, `end` not; it may wrap midnight (`22:00-08:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let error = || SettingsError::QuietHours(text.to_string());
        let (start, end) = text.split_once('-').ok_or_else(error)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| error());
        let (start, end) = (time(start)?, time(end)?);
        // An empty window, or one that is the whole day, is a typo rather than a wish.
        if start == end {
            return Err(error());
        }
        Ok(QuietHours { start, end })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let t = at.time();
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// When reminders fall due and whom an escalation goes to (`[slack]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderSettings {
    /// A request waiting this long for approval gets a reminder; twice this, an escalation.
    #[serde(rename = "approval_after_secs", with = "seconds")]
    pub approval_after: TimeDelta,
    #[serde(rename = "deployment_expected_secs", with = "seconds")]
    pub deployment_expected: TimeDelta,
    #[serde(rename = "stale_lock_secs", with = "seconds")]
    pub stale_lock: TimeDelta,
    pub quiet_hours: Option<QuietHours>,
    /// Escalations mention them (people or user groups); with none configured, the approvers
    /// again.
    pub backup_approvers: Vec<RoleEntry>,
}

impl Default for ReminderSettings {
    /// The defaults of `[slack]`: 30 minutes, 1 hour, 4 hours, no quiet hours, no backups.
    fn default() -> Self {
        ReminderSettings {
            approval_after: TimeDelta::minutes(30),
            deployment_expected: TimeDelta::hours(1),
            stale_lock: TimeDelta::hours(4),
            quiet_hours: None,
            backup_approvers: Vec::new(),
        }
    }
}

/// A reminder that is due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub ticket: TicketKey,
    pub kind: ReminderKind,
    /// When the stage began: the request, or the start of the deployment (and of its locks).
    pub since: DateTime<Utc>,
    /// When the reminder fell due (earlier than now if the scheduler was away or it was quiet).
    pub at: DateTime<Utc>,
    pub requester: UserId,
    /// Whom it mentions, in order, each once: people, or the backup approvers' user groups.
    pub mention: Vec<RoleEntry>,
    /// The locks the deployment holds; empty unless `kind` is `stale_lock`.
    pub locks: Vec<LockKey>,
}

impl Due {
    /// The command that records it.
    pub fn command(&self) -> super::Command {
        super::Command::Remind {
            ticket: self.ticket.clone(),
            kind: self.kind,
        }
    }

    /// The delivery id it is recorded under: the same on every replica, and new for each stage
    /// of each request (a request for the same ticket later starts a new stage).
    pub fn delivery(&self) -> String {
        format!(
            "reminder:{}:{}:{}",
            self.ticket,
            self.kind,
            self.since.timestamp_millis()
        )
    }
}

/// Every reminder due at `now`, in request order; nothing during quiet hours.
pub fn due(
    state: &State,
    now: DateTime<Utc>,
    settings: &ReminderSettings,
    policy: &Policy,
) -> Vec<Due> {
    if settings.quiet_hours.is_some_and(|q| q.contains(now)) {
        return Vec::new();
    }
    let mut due = Vec::new();
    for release in state.in_order() {
        let sent = |kind| release.reminders.contains(&kind);
        let mut push_at = |kind, since: DateTime<Utc>, at: DateTime<Utc>| {
            if at <= now && !sent(kind) {
                due.push(reminder(state, release, kind, since, at, settings, policy));
                true
            } else {
                false
            }
        };
        match &release.stage {
            Stage::Requested => {
                let since = release.requested_at;
                let escalated = sent(ReminderKind::Escalation)
                    || push_at(
                        ReminderKind::Escalation,
                        since,
                        since + settings.approval_after * 2,
                    );
                if !escalated {
                    push_at(
                        ReminderKind::Approval,
                        since,
                        since + settings.approval_after,
                    );
                }
            }
            Stage::Accepted { .. } => {}
            Stage::Deploying { since, alive, .. } => {
                let since = *since;
                push_at(
                    ReminderKind::OverdueDeployment,
                    since,
                    since + settings.deployment_expected,
                );
                let locked = state
                    .locks
                    .values()
                    .filter(|held| held.ticket == release.ticket)
                    .map(|held| held.since)
                    .min();
                if let Some(locked) = locked {
                    // A runner that sends signs of life (`dobrobot deploy`) leaves its locks
                    // stale as soon as it misses one; otherwise a lock is stale by its age.
                    let stale = match alive {
                        Some(alive) => alive.due(),
                        None => locked + settings.stale_lock,
                    };
                    push_at(ReminderKind::StaleLock, locked, stale);
                }
            }
        }
    }
    due
}

fn reminder(
    state: &State,
    release: &Release,
    kind: ReminderKind,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    settings: &ReminderSettings,
    policy: &Policy,
) -> Due {
    let deployer = match &release.stage {
        Stage::Deploying { by, .. } => Some(by),
        _ => None,
    };
    let admin = match &release.admin {
        AdminPresence::Joined { admin, .. } => Some(admin),
        _ => None,
    };
    let people = |users: &mut dyn Iterator<Item = &UserId>| -> Vec<RoleEntry> {
        users.cloned().map(RoleEntry::User).collect()
    };
    let entries = match kind {
        ReminderKind::Approval => people(&mut policy.approvers.iter()),
        ReminderKind::Escalation if settings.backup_approvers.is_empty() => {
            people(&mut policy.approvers.iter())
        }
        ReminderKind::Escalation => settings.backup_approvers.clone(),
        ReminderKind::OverdueDeployment => people(
            &mut [Some(&release.requester), deployer, admin]
                .into_iter()
                .flatten(),
        ),
        // The admins too: a stale lock is theirs to take over (`dep takeover`).
        ReminderKind::StaleLock => people(
            &mut [Some(&release.requester), deployer, admin]
                .into_iter()
                .flatten()
                .chain(policy.admins.iter()),
        ),
    };
    let mut mention: Vec<RoleEntry> = Vec::new();
    for entry in entries {
        if !mention.contains(&entry) {
            mention.push(entry);
        }
    }
    let locks = match kind {
        ReminderKind::StaleLock => state
            .locks
            .iter()
            .filter(|(_, held)| held.ticket == release.ticket)
            .map(|(key, _)| key.clone())
            .collect(),
        _ => Vec::new(),
    };
    Due {
        ticket: release.ticket.clone(),
        kind,
        since,
        at,
        requester: release.requester.clone(),
        mention,
        locks,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::scenario::{
        Scenario, admin_joined, alive, approved, at, deploying, g, policy, reminded, requested,
        requested_no_admin, started, t,
    };
    use super::*;
    use ReminderKind::{Approval, Escalation, OverdueDeployment, StaleLock};

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    fn r(entry: &str) -> RoleEntry {
        RoleEntry::parse(entry).unwrap()
    }

    fn settings() -> ReminderSettings {
        ReminderSettings::default()
    }

    /// (ticket, kind, when it fell due) of every reminder due at `now`.
    fn due_at(
        scenario: &Scenario,
        now: DateTime<Utc>,
        settings: &ReminderSettings,
    ) -> Vec<(String, ReminderKind, DateTime<Utc>)> {
        due(scenario.state(), now, settings, &policy())
            .into_iter()
            .map(|d| (d.ticket.to_string(), d.kind, d.at))
            .collect()
    }

    fn kinds(scenario: &Scenario, now: DateTime<Utc>) -> Vec<ReminderKind> {
        due_at(scenario, now, &settings())
            .into_iter()
            .map(|(_, kind, _)| kind)
            .collect()
    }

    #[test]
    fn settings_take_positive_durations_only() {
        assert_eq!(setting_duration("1h30m"), Ok(minutes(90)));
        assert_eq!(setting_duration(" 2 hours "), Ok(minutes(120)));
        for text in ["", "30", "0m", "0h0m", "30x", "-5m", "1.5h"] {
            assert_eq!(
                setting_duration(text),
                Err(SettingsError::Duration(text.to_string())),
                "{text}"
            );
        }
    }

    #[test]
    fn quiet_hours_parse_and_may_wrap_midnight() {
        let day = |h, m| Utc.with_ymd_and_hms(2025, 3, 3, h, m, 0).single().unwrap();
        let night = QuietHours::parse("22:00-08:00").unwrap();
        for (h, m, quiet) in [
            (21, 59, false),
            (22, 0, true),
            (23, 59, true),
            (0, 0, true),
            (7, 59, true),
            (8, 0, false),
            (12, 0, false),
        ] {
            assert_eq!(night.contains(day(h, m)), quiet, "{h}:{m:02}");
        }
        let lunch = QuietHours::parse("12:00 - 13:30").unwrap();
        for (h, m, quiet) in [
            (11, 59, false),
            (12, 0, true),
            (13, 29, true),
            (13, 30, false),
        ] {
            assert_eq!(lunch.contains(day(h, m)), quiet, "{h}:{m:02}");
        }
        for text in ["", "22:00", "22:00-", "25:00-08:00", "8-9", "08:00-08:00"] {
            assert_eq!(
                QuietHours::parse(text),
                Err(SettingsError::QuietHours(text.to_string())),
                "{text}"
            );
        }
    }

    #[test]
    fn a_request_is_reminded_after_the_wait_and_escalated_after_twice_that() {
        // Requested at at(0).
        let scenario = Scenario::given([requested("PAY-1", "dev")]);
        assert_eq!(kinds(&scenario, at(0) + minutes(29)), []);
        assert_eq!(
            due_at(&scenario, at(0) + minutes(30), &settings()),
            [("PAY-1".to_string(), Approval, at(0) + minutes(30))]
        );
        let scenario = Scenario::given([requested("PAY-1", "dev"), reminded("PAY-1", Approval)]);
        assert_eq!(kinds(&scenario, at(0) + minutes(59)), []);
        assert_eq!(
            due_at(&scenario, at(0) + minutes(60), &settings()),
            [("PAY-1".to_string(), Escalation, at(0) + minutes(60))]
        );
        let scenario = Scenario::given([
            requested("PAY-1", "dev"),
            reminded("PAY-1", Approval),
            reminded("PAY-1", Escalation),
        ]);
        assert_eq!(kinds(&scenario, at(0) + TimeDelta::days(3)), []);
    }

    #[test]
    fn a_late_scheduler_escalates_without_the_plain_reminder_first() {
        let scenario = Scenario::given([requested("PAY-1", "dev")]);
        assert_eq!(kinds(&scenario, at(0) + minutes(75)), [Escalation]);
        let scenario = Scenario::given([requested("PAY-1", "dev"), reminded("PAY-1", Escalation)]);
        assert_eq!(kinds(&scenario, at(0) + minutes(75)), []);
    }

    #[test]
    fn an_accepted_release_waiting_to_start_is_not_reminded() {
        let scenario = Scenario::given([
            requested("PAY-1", "dev"),
            approved("PAY-1", "alice"),
            admin_joined("PAY-1", "oleg"),
        ]);
        assert_eq!(kinds(&scenario, at(0) + TimeDelta::days(1)), []);
    }

    #[test]
    fn a_long_deployment_is_overdue_then_its_locks_stale() {
        // Started at at(3).
        let scenario = Scenario::given(deploying("PAY-1", "dev"));
        let start = at(3);
        assert_eq!(kinds(&scenario, start + minutes(59)), []);
        assert_eq!(
            due_at(&scenario, start + minutes(60), &settings()),
            [("PAY-1".to_string(), OverdueDeployment, start + minutes(60))]
        );
        assert_eq!(
            kinds(&scenario, start + minutes(240)),
            [OverdueDeployment, StaleLock]
        );
        let mut given = deploying("PAY-1", "dev").to_vec();
        given.push(reminded("PAY-1", OverdueDeployment));
        let scenario = Scenario::given(given.clone());
        assert_eq!(kinds(&scenario, start + minutes(239)), []);
        assert_eq!(kinds(&scenario, start + minutes(240)), [StaleLock]);
        given.push(reminded("PAY-1", StaleLock));
        assert_eq!(
            kinds(&Scenario::given(given), start + TimeDelta::days(2)),
            []
        );
    }

    #[test]
    fn a_runner_that_misses_its_sign_of_life_leaves_its_locks_stale() {
        // Started at at(3), alive at at(4) promising the next within 5 minutes: stale at
        // at(4) + 5m, long before the four hours of a lock without a runner.
        let mut given = deploying("PAY-1", "dev").to_vec();
        given.push(alive("PAY-1", "dev", 300));
        let scenario = Scenario::given(given.clone());
        assert_eq!(kinds(&scenario, at(4) + minutes(4)), []);
        assert_eq!(
            due_at(&scenario, at(4) + minutes(5), &settings()),
            [("PAY-1".to_string(), StaleLock, at(4) + minutes(5))]
        );
        // A later sign of life moves the deadline on.
        given.push(alive("PAY-1", "dev", 300));
        let scenario = Scenario::given(given);
        assert_eq!(kinds(&scenario, at(4) + minutes(5)), []);
        assert_eq!(kinds(&scenario, at(5) + minutes(5)), [StaleLock]);
    }

    #[test]
    fn the_stage_clock_restarts_with_each_stage() {
        // Requested at at(0), reminded, approved at at(2), started at at(3): the deployment's
        // hour counts from the start, not from the request.
        let scenario = Scenario::given([
            requested_no_admin("PAY-1", "dev"),
            reminded("PAY-1", Approval),
            approved("PAY-1", "alice"),
            started("PAY-1", "dev"),
        ]);
        assert_eq!(kinds(&scenario, at(0) + minutes(61)), []);
        assert_eq!(kinds(&scenario, at(3) + minutes(60)), [OverdueDeployment]);
    }

    #[test]
    fn nothing_is_due_in_quiet_hours_and_what_fell_due_goes_out_when_they_end() {
        // Requested at 10:00 (at(0)); quiet 10:15-11:00 for the test.
        let scenario = Scenario::given([requested("PAY-1", "dev")]);
        let quiet = ReminderSettings {
            quiet_hours: Some(QuietHours::parse("10:15-11:00").unwrap()),
            ..settings()
        };
        assert_eq!(due_at(&scenario, at(0) + minutes(40), &quiet), []);
        assert_eq!(due_at(&scenario, at(0) + minutes(59), &quiet), []);
        assert_eq!(
            due_at(&scenario, at(0) + minutes(60), &quiet),
            [("PAY-1".to_string(), Escalation, at(0) + minutes(60))]
        );
        let scenario = Scenario::given([requested("PAY-1", "dev")]);
        let night = ReminderSettings {
            quiet_hours: Some(QuietHours::parse("10:20-10:45").unwrap()),
            ..settings()
        };
        assert_eq!(due_at(&scenario, at(0) + minutes(44), &night), []);
        assert_eq!(
            due_at(&scenario, at(0) + minutes(45), &night),
            [("PAY-1".to_string(), Approval, at(0) + minutes(30))]
        );
    }

    #[test]
    fn quiet_hours_across_midnight_hold_a_deployment_reminder_until_morning() {
        // The scenario's clock starts at 10:00; a deployment started at 10:03 with an expected
        // duration of 12 hours is overdue at 22:03, in the night.
        let scenario = Scenario::given(deploying("PAY-1", "dev"));
        let night = ReminderSettings {
            deployment_expected: TimeDelta::hours(12),
            stale_lock: TimeDelta::days(7),
            quiet_hours: Some(QuietHours::parse("22:00-08:00").unwrap()),
            ..settings()
        };
        let day = |d, h, m| Utc.with_ymd_and_hms(2025, 3, d, h, m, 0).single().unwrap();
        assert_eq!(due_at(&scenario, day(3, 22, 3), &night), []);
        assert_eq!(due_at(&scenario, day(4, 0, 30), &night), []);
        assert_eq!(due_at(&scenario, day(4, 7, 59), &night), []);
        assert_eq!(
            due_at(&scenario, day(4, 8, 0), &night),
            [("PAY-1".to_string(), OverdueDeployment, day(3, 22, 3))]
        );
    }

    #[test]
    fn reminders_come_in_request_order() {
        let scenario = Scenario::given([
            requested("WEB-1", "eve"),
            requested("PAY-1", "dev"),
            requested("API-1", "dev"),
        ]);
        let tickets: Vec<String> = due_at(&scenario, at(2) + minutes(30), &settings())
            .into_iter()
            .map(|(ticket, _, _)| ticket)
            .collect();
        assert_eq!(tickets, ["WEB-1", "PAY-1", "API-1"]);
    }

    #[test]
    fn each_reminder_mentions_the_people_it_is_for() {
        let mention = |scenario: &Scenario, now, settings: &ReminderSettings| {
            due(scenario.state(), now, settings, &policy())
                .into_iter()
                .map(|d| (d.kind, d.mention))
                .collect::<Vec<_>>()
        };
        let waiting = Scenario::given([requested("PAY-1", "dev")]);
        assert_eq!(
            mention(&waiting, at(0) + minutes(30), &settings()),
            [(Approval, vec![r("alice"), r("bob")])]
        );
        // No backups configured: the approvers again.
        assert_eq!(
            mention(&waiting, at(0) + minutes(60), &settings()),
            [(Escalation, vec![r("alice"), r("bob")])]
        );
        let backups = ReminderSettings {
            backup_approvers: vec![r("S0BACKUP"), r("carol")],
            ..settings()
        };
        assert_eq!(
            mention(&waiting, at(0) + minutes(60), &backups),
            [(Escalation, vec![r("S0BACKUP"), r("carol")])]
        );
        // Requested by dev, admin oleg joined, started by oleg: dev and oleg, once each.
        let deploying = Scenario::given([
            requested("PAY-1", "dev"),
            approved("PAY-1", "alice"),
            admin_joined("PAY-1", "oleg"),
            started("PAY-1", "oleg"),
        ]);
        assert_eq!(
            mention(&deploying, at(3) + minutes(240), &settings()),
            [
                (OverdueDeployment, vec![r("dev"), r("oleg")]),
                (StaleLock, vec![r("dev"), r("oleg")]),
            ]
        );
        // No admin joined: a stale lock still calls the admins, who may take it over.
        let alone = Scenario::given([
            requested_no_admin("WEB-1", "dev"),
            approved("WEB-1", "alice"),
            started("WEB-1", "dev"),
        ]);
        assert_eq!(
            mention(&alone, at(2) + minutes(240), &settings()),
            [
                (OverdueDeployment, vec![r("dev")]),
                (StaleLock, vec![r("dev"), r("oleg")]),
            ]
        );
    }

    #[test]
    fn a_stale_lock_names_every_lock_the_deployment_holds() {
        let scenario = Scenario::given(deploying("PAY-1", "dev"));
        let stale: Vec<Due> = due(
            scenario.state(),
            at(3) + minutes(240),
            &settings(),
            &policy(),
        )
        .into_iter()
        .filter(|d| d.kind == StaleLock)
        .collect();
        assert_eq!(stale.len(), 1);
        assert_eq!(
            stale[0].locks,
            [
                LockKey::Service(super::super::scenario::s("billing")),
                LockKey::Group(g("backend-core")),
            ]
        );
        assert_eq!(stale[0].since, at(3));
    }

    #[test]
    fn the_delivery_id_names_the_ticket_kind_and_stage() {
        let scenario = Scenario::given([requested("PAY-1", "dev")]);
        let first = &due(
            scenario.state(),
            at(0) + minutes(30),
            &settings(),
            &policy(),
        )[0];
        assert_eq!(
            first.delivery(),
            format!("reminder:PAY-1:approval:{}", at(0).timestamp_millis())
        );
        assert_eq!(
            first.command(),
            super::super::Command::Remind {
                ticket: t("PAY-1"),
                kind: Approval
            }
        );
        // Requested again later: another stage, another id.
        let again = Scenario::given([
            requested("PAY-1", "dev"),
            super::super::scenario::cancelled("PAY-1", "dev"),
            requested("PAY-1", "dev"),
        ]);
        let second = &due(again.state(), at(2) + minutes(30), &settings(), &policy())[0];
        assert_ne!(first.delivery(), second.delivery());
    }
}

/// A duration recorded as whole seconds.
mod seconds {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &TimeDelta, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TimeDelta, D::Error> {
        let secs = i64::deserialize(deserializer)?;
        TimeDelta::try_seconds(secs)
            .ok_or_else(|| serde::de::Error::custom("duration out of range"))
    }
}
