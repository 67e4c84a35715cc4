//! The formal signs of a well-prepared task: checks of the request as typed.
//!
//! A check sees the request and answers with the failure it found. The checks are data (the
//! policy is recorded in the ledger, `Event::PolicyChanged`), so each kind is a variant here.
//! The tracker's checks are not among these: they need what Jira said, which the bot looks up
//! before `decide` and hands in with the request, and their one rule is
//! `tracker::TrackerRules::assess`, which the policy runs after these (`Policy::check`).

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::command::ReleaseRequest;
use super::refusal::CheckFailure;

/// One check on a release request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum TicketCheck {
    /// The ticket key matches the configured pattern.
    TicketPattern { pattern: Pattern },
    /// A wiki or release-notes link is present.
    WikiLinkRequired,
}

impl TicketCheck {
    pub fn check(&self, request: &ReleaseRequest) -> Option<CheckFailure> {
        match self {
            TicketCheck::TicketPattern { pattern } => (!pattern
                .0
                .is_match(request.ticket.as_str()))
            .then(|| CheckFailure::TicketPattern {
                pattern: pattern.as_str().to_string(),
            }),
            TicketCheck::WikiLinkRequired => request
                .wiki
                .is_none()
                .then_some(CheckFailure::WikiLinkMissing),
        }
    }
}

/// A regular expression that is recorded as its text and equal to another by its text.
#[derive(Clone)]
pub struct Pattern(Regex);

impl Pattern {
    pub fn new(text: &str) -> Result<Self, regex::Error> {
        Regex::new(text).map(Pattern)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<Regex> for Pattern {
    fn from(regex: Regex) -> Self {
        Pattern(regex)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::new(&text).map_err(serde::de::Error::custom)
    }
}
