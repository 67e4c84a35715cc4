//! Who is told when a release moves on: the approvers when a request is made, the admins when
//! an accepted release needs one, and the requester when someone else approves, rejects, joins,
//! starts, finishes or rolls back their release. Pure and medium-free: a notice is whom and
//! which step; the words are the renderer's (`Renderer::notice`), and the Slack presenter
//! delivers them as mentions in the release's thread or as direct messages.

use crate::domain::state::AdminPresence;
use crate::domain::{Event, State, UserId};

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
        | Event::DeploymentRolledBack { by, .. } => requester_unless(by).into_iter().collect(),
        _ => Vec::new(),
    }
}
