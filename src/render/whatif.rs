//! A what-if's differences as rows (`dobrobot what-if`'s table and CSV): when, which ticket,
//! what kind of difference, and what in words. Its JSON is the typed answer itself.

use serde::Serialize;

use crate::domain::replay::Difference;
use crate::read::rows::Row;

use super::Renderer;
use super::words::span;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DifferenceRow {
    pub at: String,
    pub ticket: String,
    pub difference: &'static str,
    pub detail: String,
}

impl Row for DifferenceRow {
    const HEADERS: &'static [&'static str] = &["at", "ticket", "difference", "detail"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.at.clone(),
            self.ticket.clone(),
            self.difference.to_string(),
            self.detail.clone(),
        ]
    }
}

/// One row per difference, in the order given (time order).
pub fn rows(differences: &[Difference], renderer: &Renderer) -> Vec<DifferenceRow> {
    differences
        .iter()
        .map(|d| DifferenceRow {
            at: d.at().format("%Y-%m-%d %H:%M:%S").to_string(),
            ticket: d.ticket().map(|t| t.to_string()).unwrap_or_default(),
            difference: d.kind(),
            detail: detail(d, renderer),
        })
        .collect()
}

/// What a difference means, in a sentence.
pub fn detail(difference: &Difference, r: &Renderer) -> String {
    match difference {
        Difference::StartRefused {
            refusal,
            still_waiting: true,
            ..
        } => format!(
            "would not have started: still waiting at the end of the range ({})",
            r.refusal(refusal)
        ),
        Difference::StartRefused { refusal, .. } => {
            format!("would not have started: {}", r.refusal(refusal))
        }
        Difference::StartMoved {
            by_secs,
            waited_for,
            would_start_at,
            request_order,
            ..
        } => {
            let when = would_start_at.format("%Y-%m-%d %H:%M:%S");
            if *by_secs >= 0 {
                let why = waited_for
                    .as_ref()
                    .map_or(String::new(), |w| format!(", waiting: {}", r.refusal(w)));
                format!(
                    "would have started {} later, at {when} (request #{request_order}{why})",
                    span(*by_secs)
                )
            } else {
                format!(
                    "would have started {} earlier, at {when} (request #{request_order})",
                    span(-by_secs)
                )
            }
        }
        Difference::KeptApart { other, group, .. } => format!(
            "ran together with {other} under the old rules; conflict group {group} keeps them apart"
        ),
        Difference::ApprovalNotCounted {
            approver, refusal, ..
        } => format!(
            "the approval by {approver} would not have counted: {}",
            r.refusal(refusal)
        ),
        Difference::Refused {
            by,
            command,
            refusal,
            ..
        } => format!(
            "`{command}` by {by} would have been refused: {}",
            r.refusal(refusal)
        ),
        Difference::Allowed {
            by, command, was, ..
        } => format!(
            "`{command}` by {by} would have been carried out (it was refused: {})",
            r.refusal(was)
        ),
    }
}
