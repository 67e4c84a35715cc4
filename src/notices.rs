//! Who is told when a release moves on: the approvers when a request is made, the admins when
//! an accepted release needs one, the role a forced takeover's second person needs when one is
//! proposed, and the requester when someone else approves, rejects, joins, starts, finishes,
//! rolls back, proposes to take over or takes over their release. Pure and medium-free: a notice is whom and
//! which step; the words are the renderer's (`Renderer::notice`), and the Slack presenter
//! delivers them as mentions in the release's thread or as direct messages.

use crate::domain::state::AdminPresence;
use crate::domain::{Event, Role, State, UserId};

/// Whom a notice is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The configured approvers (users and user groups).
    Approvers,
    /// The configured admins (users and user groups).
    Admins,
    Person(UserId),
}

/// `to` is told of `event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to: Audience,
    pub event: Event,
}

/// The notices for `event` on a release requested by `requester`, with `state` right after it.
pub fn notices(event: &Event, state: &State, requester: Option<&UserId>) -> Vec<Notice> {
    let Some(ticket) = event.ticket() else {
        return Vec::new();
    };
    let notice = |to: Audience| Notice {
        to,
        event: event.clone(),
    };
    // The requester hears of what others do to their release.
    let requester_unless = |by: &UserId| {
        requester
            .filter(|r| *r != by)
            .map(|r| notice(Audience::Person(r.clone())))
    };
    match event {
        Event::ReleaseRequested { .. } => vec![notice(Audience::Approvers)],
        Event::ReleaseApproved { approver, .. } => {
            let needs_admin = state
                .release(ticket)
                .is_some_and(|r| r.admin == AdminPresence::Needed);
            let admins = needs_admin.then(|| notice(Audience::Admins));
            admins
                .into_iter()
                .chain(requester_unless(approver))
                .collect()
        }
        Event::ReleaseRejected { approver: by, .. }
        | Event::AdminJoined { admin: by, .. }
        | Event::DeploymentStarted { by, .. }
        | Event::DeploymentFinished { by, .. }
        | Event::DeploymentRolledBack { by, .. }
        | Event::DeploymentAbandoned { by, .. } => requester_unless(by).into_iter().collect(),
        Event::TakeoverProposed { by, second, .. } => {
            let seconds = match second {
                Role::Admin => vec![Audience::Admins],
                Role::Approver => vec![Audience::Approvers],
                _ => vec![Audience::Admins, Audience::Approvers],
            };
            seconds
                .into_iter()
                .map(notice)
                .chain(requester_unless(by))
                .collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Reason, TicketKey};

    fn u(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn to(event: Event) -> Vec<Audience> {
        notices(&event, &State::default(), Some(&u("dev")))
            .into_iter()
            .map(|n| n.to)
            .collect()
    }

    #[test]
    fn a_takeover_tells_the_requester_and_a_proposal_the_role_that_may_confirm_it() {
        let ticket = TicketKey::parse("PAY-1").unwrap();
        let reason = Reason::parse("runner gone").unwrap();
        let abandoned = |by: &str| Event::DeploymentAbandoned {
            ticket: ticket.clone(),
            by: u(by),
            reason: reason.clone(),
            proposed_by: None,
        };
        assert_eq!(to(abandoned("oleg")), [Audience::Person(u("dev"))]);
        assert_eq!(to(abandoned("dev")), []);
        let proposed = |by: &str, second: Role| Event::TakeoverProposed {
            ticket: ticket.clone(),
            by: u(by),
            reason: reason.clone(),
            second,
        };
        assert_eq!(
            to(proposed("alice", Role::Admin)),
            [Audience::Admins, Audience::Person(u("dev"))]
        );
        assert_eq!(
            to(proposed("oleg", Role::Approver)),
            [Audience::Approvers, Audience::Person(u("dev"))]
        );
        assert_eq!(
            to(proposed("dev", Role::AdminOrApprover)),
            [Audience::Admins, Audience::Approvers]
        );
    }
}
