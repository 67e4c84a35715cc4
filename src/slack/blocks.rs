//! A release's message in the release channel, as Block Kit: what is asked (with the ticket's
//! summary and status in the tracker, when one is configured), where it stands, and buttons
//! for the next step. Pure: the same release at the same stage is the same JSON,
//! checked by snapshot tests.
//!
//! A button's value is the command text it stands for, so pressing it is the same command as
//! typing it, decided by the ledger with the same checks; showing a button decides nothing.
//! Reject and Rollback (and a stale lock reminder's Take over) carry their command without the
//! reason: pressing them asks for it in a modal (`views::reason_modal`).

use slack_morphism::prelude::*;

use crate::domain::{ReminderKind, TicketKey, UserId};
use crate::projections::release::{Admin, Status};
use crate::render::Renderer;

use super::messages::Card;

/// The release's message: the text (for notifications and old clients) and the blocks.
pub fn release_message(
    r: &Renderer,
    ticket: &TicketKey,
    card: &Card,
    status: &Status,
) -> SlackMessageContent {
    let link = r.ticket(ticket);
    let mut about = format!(
        "*Release {link}* requested by {}\nServices: {}",
        r.person(&card.requester),
        card.services
            .iter()
            .map(|s| r.text(s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(tracker) = &card.tracker {
        about.push_str(&format!("\n{}", r.in_tracker(tracker)));
    }
    if let Some(wiki) = &card.wiki {
        about.push_str(&format!("\nRelease notes: <{wiki}>"));
    }
    if !card.comment.is_empty() {
        about.push_str(&format!("\n> {}", r.text(&card.comment)));
    }
    let status_line = status_line(r, status);
    let mut blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_block_id(SlackBlockId("release".into()))
            .with_text(md!(about))
            .into(),
        SlackContextBlock::new(vec![md!(status_line.clone())])
            .with_block_id(SlackBlockId("status".into()))
            .into(),
    ];
    let buttons = buttons(ticket, status);
    if !buttons.is_empty() {
        blocks.push(
            SlackActionsBlock::new(buttons)
                .with_block_id(SlackBlockId("next".into()))
                .into(),
        );
    }
    SlackMessageContent::new()
        .with_text(format!(
            "Release {link} by {}: {status_line}",
            r.person(&card.requester)
        ))
        .with_blocks(blocks)
}

/// A reminder in a release's thread: its text, and for a stale lock a Take over button, which
/// asks the reason in a modal (`views::reason_modal`) and runs `dep takeover TICKET <reason>`.
/// Anyone sees the button; the ledger lets only an admin (and only an old enough deployment)
/// through, and the reminder mentions the admins.
pub fn reminder(text: &str, ticket: &TicketKey, kind: ReminderKind) -> SlackMessageContent {
    let content = SlackMessageContent::new().with_text(text.to_string());
    if kind != ReminderKind::StaleLock {
        return content;
    }
    let takeover = SlackActionBlockElement::Button(
        SlackBlockButtonElement::new(pt!("Take over"))
            .with_action_id(SlackActionId("takeover".into()))
            .with_value(format!("dep takeover {ticket}"))
            .with_style(SlackBlockButtonStyle::Danger),
    );
    content.with_blocks(vec![
        SlackSectionBlock::new()
            .with_block_id(SlackBlockId("reminder".into()))
            .with_text(md!(text.to_string()))
            .into(),
        SlackActionsBlock::new(vec![takeover])
            .with_block_id(SlackBlockId("takeover".into()))
            .into(),
    ])
}

fn status_line(r: &Renderer, status: &Status) -> String {
    let person = |user: &UserId| r.person(user);
    let admin = |admin: &Admin, ready: &str| match admin {
        Admin::NotNeeded => ready.to_string(),
        Admin::Needed => "waiting for an admin".to_string(),
        Admin::Joined(who) => format!("admin: {}", person(who)),
    };
    match status {
        Status::Requested { admin: a } => format!(
            ":hourglass_flowing_sand: Waiting for approval · {}",
            admin(a, "no admin needed")
        ),
        Status::Accepted { approver, admin: a } => {
            let next = match a {
                Admin::Needed => "waiting for an admin".to_string(),
                Admin::NotNeeded => "ready to start".to_string(),
                Admin::Joined(who) => format!("admin: {} · ready to start", person(who)),
            };
            format!(
                ":white_check_mark: Accepted by {} · {next}",
                person(approver)
            )
        }
        Status::Deploying { by, since } => format!(
            ":rocket: Deploying since {}, started by {}",
            since.format("%Y-%m-%d %H:%M UTC"),
            person(by)
        ),
        Status::Finished { by } => format!(":checkered_flag: Finished by {}", person(by)),
        Status::RolledBack { by, reason } => {
            format!(":rewind: Rolled back by {}: {}", person(by), r.text(reason))
        }
        Status::Abandoned {
            by,
            reason,
            proposed_by,
        } => match proposed_by {
            Some(first) => format!(
                ":octagonal_sign: Taken over by {} and {} (forced): {}",
                person(first),
                person(by),
                r.text(reason)
            ),
            None => format!(
                ":octagonal_sign: Taken over by {}: {}",
                person(by),
                r.text(reason)
            ),
        },
        Status::Rejected { by, reason } => {
            format!(":no_entry: Rejected by {}: {}", person(by), r.text(reason))
        }
        Status::Cancelled { by } => format!(":wastebasket: Cancelled by {}", person(by)),
    }
}

fn buttons(ticket: &TicketKey, status: &Status) -> Vec<SlackActionBlockElement> {
    let button =
        |action: &str, label: &str, value: String, style: Option<SlackBlockButtonStyle>| {
            SlackActionBlockElement::Button(
                SlackBlockButtonElement::new(pt!(label))
                    .with_action_id(SlackActionId(action.into()))
                    .with_value(value)
                    .opt_style(style),
            )
        };
    let here = || button("here", "I'm here", format!("here {ticket}"), None);
    let primary = Some(SlackBlockButtonStyle::Primary);
    let danger = Some(SlackBlockButtonStyle::Danger);
    match status {
        Status::Requested { admin } => {
            let mut row = vec![
                button("accept", "Accept", format!("accept {ticket}"), primary),
                // Reject and Rollback open a modal asking why (`views::reason_modal`).
                button("reject", "Reject", format!("reject {ticket}"), danger),
            ];
            if *admin == Admin::Needed {
                row.push(here());
            }
            row
        }
        Status::Accepted {
            admin: Admin::Needed,
            ..
        } => vec![here()],
        Status::Accepted { .. } => vec![button(
            "start",
            "Start",
            format!("dep start {ticket}"),
            primary,
        )],
        Status::Deploying { .. } => vec![
            button("finish", "Finish", format!("dep finish {ticket}"), primary),
            button(
                "rollback",
                "Rollback",
                format!("dep rollback {ticket}"),
                danger,
            ),
        ],
        Status::Finished { .. }
        | Status::RolledBack { .. }
        | Status::Abandoned { .. }
        | Status::Rejected { .. }
        | Status::Cancelled { .. } => Vec::new(),
    }
}
