//! Who is told what when a release moves on: approvers when a request is posted, admins when an
//! accepted release needs one, the requester when an admin is found, the deployment started,
//! finished or was rolled back, or the request was rejected. Pure: the front delivers each
//! notice as a mention in the release's thread (`notify = "group"`) or as DMs (`"dm"`).

use crate::domain::state::AdminPresence;
use crate::domain::{Event, State, TicketKey, UserId};

use crate::render::Renderer;

/// Whom a notice is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The configured approvers (users and user groups).
    Approvers,
    /// The configured admins (users and user groups).
    Admins,
    Person(UserId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub ticket: TicketKey,
    pub to: Audience,
    pub text: String,
}

/// How notices reach people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A mention of the role's user groups or people in the release's thread.
    Mention,
    /// A direct message to each person.
    Dm,
}

impl Delivery {
    pub fn from_config(notify: &str) -> Delivery {
        if notify.trim().eq_ignore_ascii_case("dm") {
            Delivery::Dm
        } else {
            Delivery::Mention
        }
    }
}

/// The notices for the events of one command on a release requested by `requester`, with
/// `state` right after the command.
pub fn notices(
    events: &[Event],
    state: &State,
    requester: Option<&UserId>,
    renderer: &Renderer,
) -> Vec<Notice> {
    let person = |user: &UserId| renderer.person(user);
    let mut out = Vec::new();
    for event in events {
        let Some(ticket) = event.ticket() else {
            continue;
        };
        let link = renderer.ticket(ticket);
        let mut notice = |to: Audience, text: String| {
            out.push(Notice {
                ticket: ticket.clone(),
                to,
                text,
            })
        };
        // The requester hears of what others do to their release.
        let requester_unless = |by: &UserId| requester.filter(|r| *r != by).cloned();
        match event {
            Event::ReleaseRequested { requester, .. } => notice(
                Audience::Approvers,
                format!(
                    "Release {link} by {} waits for your approval: press *Accept* or *Reject*.",
                    person(requester)
                ),
            ),
            Event::ReleaseApproved { approver, .. } => {
                let needs_admin = state
                    .release(ticket)
                    .is_some_and(|r| r.admin == AdminPresence::Needed);
                if needs_admin {
                    notice(
                        Audience::Admins,
                        format!("Release {link} is accepted and needs an admin: press *I'm here*."),
                    );
                }
                if let Some(r) = requester_unless(approver) {
                    notice(
                        Audience::Person(r),
                        format!("{} accepted your release {link}.", person(approver)),
                    );
                }
            }
            Event::ReleaseRejected {
                approver, reason, ..
            } => {
                if let Some(r) = requester_unless(approver) {
                    notice(
                        Audience::Person(r),
                        format!(
                            "{} rejected your release {link}: {}",
                            person(approver),
                            renderer.text(reason)
                        ),
                    );
                }
            }
            Event::AdminJoined { admin, .. } => {
                if let Some(r) = requester_unless(admin) {
                    notice(
                        Audience::Person(r),
                        format!("Admin found: {} joins your release {link}.", person(admin)),
                    );
                }
            }
            Event::DeploymentStarted { by, .. } => {
                if let Some(r) = requester_unless(by) {
                    notice(
                        Audience::Person(r),
                        format!(
                            "Deployment of your release {link} started by {}.",
                            person(by)
                        ),
                    );
                }
            }
            Event::DeploymentFinished { by, .. } => {
                if let Some(r) = requester_unless(by) {
                    notice(
                        Audience::Person(r),
                        format!(
                            "Deployment of your release {link} finished by {}.",
                            person(by)
                        ),
                    );
                }
            }
            Event::DeploymentRolledBack { by, reason, .. } => {
                if let Some(r) = requester_unless(by) {
                    notice(
                        Audience::Person(r),
                        format!(
                            "Deployment of your release {link} rolled back by {}: {}",
                            person(by),
                            renderer.text(reason)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    out
}
