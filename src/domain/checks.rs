//! The formal signs of a well-prepared task: checks of the request as typed.
//!
//! A check sees the request and answers with the failure it found. The tracker's checks are not
//! among these: they need what Jira said, which the bot looks up before `decide` and hands in
//! with the request, and their one rule is `tracker::TrackerRules::assess`, which the policy
//! runs after these (`Policy::check`).

use std::fmt;

use regex::Regex;

use super::command::ReleaseRequest;
use super::refusal::CheckFailure;

/// One check on a release request.
pub trait TicketCheck: Send + Sync + fmt::Debug {
    fn check(&self, request: &ReleaseRequest) -> Option<CheckFailure>;
}

/// The ticket key matches the configured pattern.
#[derive(Debug, Clone)]
pub struct TicketPattern(pub Regex);

impl TicketCheck for TicketPattern {
    fn check(&self, request: &ReleaseRequest) -> Option<CheckFailure> {
        (!self.0.is_match(request.ticket.as_str())).then(|| CheckFailure::TicketPattern {
            pattern: self.0.as_str().to_string(),
        })
    }
}

/// A wiki or release-notes link is present.
#[derive(Debug, Clone, Copy)]
pub struct WikiLinkRequired;

impl TicketCheck for WikiLinkRequired {
    fn check(&self, request: &ReleaseRequest) -> Option<CheckFailure> {
        request
            .wiki
            .is_none()
            .then_some(CheckFailure::WikiLinkMissing)
    }
}
