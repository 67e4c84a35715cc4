//! A recorded policy as plain text, for `dobrobot policy show`.

use std::fmt::Write as _;

use crate::domain::Policy;
use crate::domain::policy::{describe_checks, describe_tracker};

/// The policy, a rule a line.
pub fn plain(policy: &Policy) -> String {
    let mut out = String::new();
    let people = |set: &std::collections::BTreeSet<crate::domain::UserId>| {
        join(set.iter().map(|u| u.as_str().to_string()))
    };
    let entries = |e: &[crate::domain::RoleEntry]| join(e.iter().map(|e| e.to_string()));
    let _ = writeln!(out, "Approvers: {}", people(&policy.approvers));
    let _ = writeln!(out, "  as configured: {}", entries(&policy.roles.approvers));
    let _ = writeln!(out, "Admins: {}", people(&policy.admins));
    let _ = writeln!(out, "  as configured: {}", entries(&policy.roles.admins));
    for (group, members) in &policy.user_groups {
        let _ = writeln!(out, "User group {group}: {}", people(members));
    }
    let _ = writeln!(
        out,
        "Four-eyes: {}",
        if policy.four_eyes {
            "on (a requester may not approve their own release)"
        } else {
            "off"
        }
    );
    let _ = writeln!(out, "Services by project:");
    if policy.services_by_project.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (project, services) in &policy.services_by_project {
        let _ = writeln!(
            out,
            "  {project}: {}",
            join(services.iter().map(|s| s.to_string()))
        );
    }
    let _ = writeln!(out, "Conflict groups:");
    if policy.conflict_groups.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for group in &policy.conflict_groups {
        let _ = writeln!(
            out,
            "  {}: {}",
            group.name,
            join(group.services.iter().map(|s| s.to_string()))
        );
    }
    let _ = writeln!(out, "Ticket checks: {}", describe_checks(&policy.checks));
    let _ = writeln!(
        out,
        "Tracker checks: {}",
        describe_tracker(policy.tracker.as_ref())
    );
    let _ = writeln!(
        out,
        "Takeover: an admin alone after {}; before that an admin and an approver (--force)",
        super::words::span(i64::try_from(policy.takeover_after_secs).unwrap_or(i64::MAX))
    );
    let r = &policy.reminders;
    let _ = writeln!(
        out,
        "Reminders: approval after {}, deployment expected within {}, stale lock after {}",
        super::words::span(r.approval_after.num_seconds()),
        super::words::span(r.deployment_expected.num_seconds()),
        super::words::span(r.stale_lock.num_seconds()),
    );
    let quiet = r.quiet_hours.map_or("none".to_string(), |q| {
        format!("{}-{} UTC", q.start.format("%H:%M"), q.end.format("%H:%M"))
    });
    let _ = writeln!(out, "  quiet hours: {quiet}");
    let _ = writeln!(out, "  backup approvers: {}", entries(&r.backup_approvers));
    out
}

fn join(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
