//! The waitlist: whoever was refused `dep start` because of a lock is told when that lock
//! frees, first come first served.
//!
//! Nothing is kept beside the ledger: the waitlist is a fold over it, so it survives restarts
//! and every replica sees the same one. A `CommandRefused` of `dep start` with `LockHeld` puts
//! (who tried, their ticket) on the list, waiting on the ticket holding the lock; trying again
//! keeps the place and follows the holder named last. Starting, or the release being cancelled
//! or rejected, takes it off. When the holder's deployment finishes or rolls back, the ones
//! waiting on it, in the order they first asked, are the ones to tell ([`Waitlist::waiting_on`]).
//! The follower keeps it current; the Slack front sends the messages.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Projection;
use crate::domain::{Event, Refusal, TicketKey, UserId};
use crate::envelope::Recorded;

/// Someone waiting to start `ticket`, held up by the deployment of `holder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Waiter {
    user: UserId,
    ticket: TicketKey,
    holder: TicketKey,
}

/// The waitlist folded from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waitlist {
    /// Waiting now, in the order they first asked.
    waiting: Vec<Waiter>,
    /// For each ticket, who was waiting on it when its deployment last ended, in order, less
    /// those who started or closed since.
    freed: HashMap<TicketKey, Vec<(UserId, TicketKey)>>,
}

impl Waitlist {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::CommandRefused {
                by,
                command,
                ticket: Some(ticket),
                refusal: Refusal::LockHeld { ticket: holder, .. },
            } if command == "dep start" => {
                self.forget(|user, t| user == by && t == ticket);
                match self
                    .waiting
                    .iter_mut()
                    .find(|w| &w.user == by && &w.ticket == ticket)
                {
                    Some(waiter) => waiter.holder = holder.clone(),
                    None => self.waiting.push(Waiter {
                        user: by.clone(),
                        ticket: ticket.clone(),
                        holder: holder.clone(),
                    }),
                }
            }
            Event::DeploymentFinished { ticket, .. }
            | Event::DeploymentRolledBack { ticket, .. }
            | Event::DeploymentAbandoned { ticket, .. } => {
                let (freed, still): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiting)
                    .into_iter()
                    .partition(|w| &w.holder == ticket);
                self.waiting = still;
                // Only deployments somebody waited on are kept: a ledger of years has finished
                // hundreds of thousands, and every close looks through what is kept.
                if freed.is_empty() {
                    self.freed.remove(ticket);
                } else {
                    self.freed.insert(
                        ticket.clone(),
                        freed.into_iter().map(|w| (w.user, w.ticket)).collect(),
                    );
                }
                self.close(ticket);
            }
            Event::DeploymentStarted { ticket, .. }
            | Event::ReleaseCancelled { ticket, .. }
            | Event::ReleaseRejected { ticket, .. }
            | Event::ReleaseRequested { ticket, .. } => self.close(ticket),
            _ => {}
        }
    }

    /// Who to tell now that `freed`'s deployment has ended, first come first.
    pub fn waiting_on(&self, freed: &TicketKey) -> Vec<(UserId, TicketKey)> {
        self.freed.get(freed).cloned().unwrap_or_default()
    }

    /// `ticket` started or closed: nobody waits to start it any more.
    fn close(&mut self, ticket: &TicketKey) {
        self.waiting.retain(|w| &w.ticket != ticket);
        self.forget(|_, t| t == ticket);
    }

    fn forget(&mut self, gone: impl Fn(&UserId, &TicketKey) -> bool) {
        self.freed.retain(|_, told| {
            told.retain(|(user, ticket)| !gone(user, ticket));
            !told.is_empty()
        });
    }
}

impl Projection for Waitlist {
    fn apply(&mut self, recorded: &Recorded) {
        Waitlist::apply(self, &recorded.event);
    }
}

/// Who to tell, in order, that the deployment of `freed` has ended, from the ledger's events.
pub fn waiting_on<'e>(
    history: impl IntoIterator<Item = &'e Event>,
    freed: &TicketKey,
) -> Vec<(UserId, TicketKey)> {
    let mut waiting = Waitlist::default();
    for event in history {
        waiting.apply(event);
    }
    waiting.waiting_on(freed)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::{LockKey, ServiceName};

    fn t(text: &str) -> TicketKey {
        TicketKey::parse(text).expect("a test ticket")
    }

    fn u(text: &str) -> UserId {
        UserId::parse(text).expect("a test user")
    }

    /// `who`'s `dep start TICKET` refused because `holder` holds billing.
    fn held_up(who: &str, ticket: &str, holder: &str) -> Event {
        Event::CommandRefused {
            by: u(who),
            command: "dep start".to_string(),
            ticket: Some(t(ticket)),
            refusal: Refusal::LockHeld {
                lock: LockKey::Service(ServiceName::parse("billing").expect("a service")),
                ticket: t(holder),
                by: u("dev"),
                since: Utc.with_ymd_and_hms(2025, 3, 3, 10, 0, 0).unwrap(),
            },
        }
    }

    fn started(ticket: &str) -> Event {
        Event::DeploymentStarted {
            ticket: t(ticket),
            by: u("dev"),
            services: vec![ServiceName::parse("billing").expect("a service")],
            conflict_groups: Vec::new(),
        }
    }

    fn finished(ticket: &str) -> Event {
        Event::DeploymentFinished {
            ticket: t(ticket),
            by: u("dev"),
        }
    }

    fn told(list: &[(&str, &str)]) -> Vec<(UserId, TicketKey)> {
        list.iter()
            .map(|(who, ticket)| (u(who), t(ticket)))
            .collect()
    }

    /// What it keeps grows with who is waiting, not with the deployments the ledger has seen
    /// end: each close looks through all of it.
    #[test]
    fn finished_deployments_nobody_waited_on_are_not_kept() {
        let mut waitlist = Waitlist::default();
        for n in 0..1000 {
            let ticket = format!("PAY-{n}");
            waitlist.apply(&started(&ticket));
            waitlist.apply(&finished(&ticket));
        }
        assert!(waitlist.freed.is_empty(), "{}", waitlist.freed.len());
        waitlist.apply(&started("PAY-1000"));
        waitlist.apply(&held_up("carol", "PAY-2000", "PAY-1000"));
        waitlist.apply(&finished("PAY-1000"));
        assert_eq!(waitlist.freed.len(), 1);
        assert_eq!(
            waitlist.waiting_on(&t("PAY-1000")),
            told(&[("carol", "PAY-2000")])
        );
        // Once carol starts, nothing is kept.
        waitlist.apply(&started("PAY-2000"));
        assert!(waitlist.freed.is_empty());
    }

    #[test]
    fn those_held_up_by_a_lock_are_told_in_the_order_they_asked() {
        let history = [
            started("PAY-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            held_up("fay", "PAY-3", "PAY-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            finished("PAY-1"),
        ];
        assert_eq!(
            waiting_on(&history, &t("PAY-1")),
            told(&[("eve", "PAY-2"), ("fay", "PAY-3")])
        );
        let rolled_back = [
            started("PAY-1"),
            held_up("fay", "PAY-3", "PAY-1"),
            Event::DeploymentRolledBack {
                ticket: t("PAY-1"),
                by: u("dev"),
                reason: crate::domain::Reason::parse("5xx").expect("a reason"),
            },
        ];
        assert_eq!(
            waiting_on(&rolled_back, &t("PAY-1")),
            told(&[("fay", "PAY-3")])
        );
    }

    #[test]
    fn nobody_is_told_before_the_lock_frees_or_about_another_lock() {
        let history = [
            started("PAY-1"),
            started("API-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            held_up("fay", "API-2", "API-1"),
        ];
        assert_eq!(waiting_on(&history, &t("PAY-1")), []);
        let history = [history.to_vec(), vec![finished("API-1")]].concat();
        assert_eq!(waiting_on(&history, &t("PAY-1")), []);
        assert_eq!(waiting_on(&history, &t("API-1")), told(&[("fay", "API-2")]));
    }

    #[test]
    fn those_who_started_or_closed_in_the_meantime_drop_out() {
        let history = [
            started("PAY-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            held_up("fay", "PAY-3", "PAY-1"),
            held_up("gus", "PAY-4", "PAY-1"),
            Event::ReleaseCancelled {
                ticket: t("PAY-2"),
                by: u("eve"),
            },
            Event::ReleaseRejected {
                ticket: t("PAY-4"),
                approver: u("alice"),
                reason: crate::domain::Reason::parse("no").expect("a reason"),
            },
            finished("PAY-1"),
            // Told, then started before the DMs went out.
            started("PAY-3"),
        ];
        assert_eq!(waiting_on(&history, &t("PAY-1")), []);
    }

    #[test]
    fn asking_again_keeps_the_place_and_follows_the_new_holder() {
        let history = [
            started("PAY-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            held_up("fay", "PAY-3", "PAY-1"),
            finished("PAY-1"),
            started("PAY-9"),
            // Both were told PAY-1 was done; PAY-9 got in first, and fay asked again first.
            held_up("fay", "PAY-3", "PAY-9"),
            held_up("eve", "PAY-2", "PAY-9"),
            finished("PAY-9"),
        ];
        assert_eq!(
            waiting_on(&history, &t("PAY-9")),
            told(&[("fay", "PAY-3"), ("eve", "PAY-2")])
        );
        // Held up by PAY-1 first and by PAY-9 after: told when PAY-9 ends, in the first place.
        let history = [
            started("PAY-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            held_up("fay", "PAY-3", "PAY-9"),
            held_up("eve", "PAY-2", "PAY-9"),
            finished("PAY-9"),
        ];
        assert_eq!(
            waiting_on(&history, &t("PAY-9")),
            told(&[("eve", "PAY-2"), ("fay", "PAY-3")])
        );
    }

    #[test]
    fn only_the_latest_end_of_a_deployment_counts() {
        let history = [
            started("PAY-1"),
            held_up("eve", "PAY-2", "PAY-1"),
            finished("PAY-1"),
            // PAY-1 requested, started and finished again: eve was told the first time.
            started("PAY-1"),
            finished("PAY-1"),
        ];
        assert_eq!(waiting_on(&history, &t("PAY-1")), []);
    }

    #[test]
    fn other_refusals_and_commands_do_not_put_anyone_on_the_list() {
        let not_your_turn = Event::CommandRefused {
            by: u("eve"),
            command: "dep start".to_string(),
            ticket: Some(t("PAY-2")),
            refusal: Refusal::NotYourTurn {
                ticket: t("PAY-2"),
                ahead: t("PAY-1"),
                over: LockKey::Service(ServiceName::parse("billing").expect("a service")),
            },
        };
        let mut not_a_start = held_up("eve", "PAY-3", "PAY-1");
        if let Event::CommandRefused { command, .. } = &mut not_a_start {
            *command = "accept".to_string();
        }
        let history = [
            started("PAY-1"),
            not_your_turn,
            not_a_start,
            finished("PAY-1"),
        ];
        assert_eq!(waiting_on(&history, &t("PAY-1")), []);
    }
}
