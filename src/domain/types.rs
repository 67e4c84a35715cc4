//! The nouns of the release process, each parsed once at the edge, and the small vocabularies
//! (a release's status, a lock's key, a reminder's kind) that commands, events, refusals and the
//! state all speak.
//!
//! Everything here depends on nothing else in the domain, so imports run one way:
//! `types` <- `command`, `refusal` <- `event` <- `state` <- `decide`, `queue`, `reminders`.
//!
//! A `TicketKey` or a `ServiceName` that exists is well-formed, so the rules in `decide` never
//! re-check text. The *configured* ticket pattern is a policy check (see `checks.rs`), not a
//! parse rule: the parser accepts any key of the general `PROJECT-123` shape so that a ticket
//! that fails the pattern gets a refusal naming the check, not a usage error.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

/// Why a piece of text is not the thing it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseValueError {
    #[error("`{0}` is not a ticket key (expected something like PAY-123)")]
    Ticket(String),
    #[error("`{0}` is not a service name (letters, digits, `-`, `_`, `.`)")]
    Service(String),
    #[error("`{0}` is not a user id")]
    User(String),
    #[error("a conflict group needs a name")]
    EmptyGroup,
    #[error("`{0}` is not an http(s) link")]
    Link(String),
    #[error("a reason is required")]
    EmptyReason,
    #[error("`{0}` is not a time (2026-11-25T03:12Z, `2026-11-25 03:12` in UTC, or `2h` ago)")]
    Time(String),
    #[error("`{0}` is not a duration (2h, 90m, 1h30m)")]
    Duration(String),
    #[error("`{0}` is not a Slack user group id (like S0123ABC)")]
    UserGroup(String),
}

/// A tracker ticket such as `PAY-123`, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TicketKey(String);

impl TicketKey {
    /// Accepts `PAY-123`, `pay-123` and `#PAY-123`; the project part is letters and digits
    /// starting with a letter, the number part digits.
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        let bad = || ParseValueError::Ticket(text.to_string());
        let key = text.trim().trim_start_matches('#').to_ascii_uppercase();
        let (project, number) = key.split_once('-').ok_or_else(bad)?;
        let project_ok = project.len() <= 32
            && project.starts_with(|c: char| c.is_ascii_alphabetic())
            && project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        let number_ok =
            !number.is_empty() && number.len() <= 12 && number.chars().all(|c| c.is_ascii_digit());
        if project_ok && number_ok {
            Ok(Self(key))
        } else {
            Err(bad())
        }
    }

    /// The project part, `PAY` of `PAY-123`: what config maps to services.
    pub fn project(&self) -> &str {
        self.0.split_once('-').map(|(p, _)| p).unwrap_or(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A deployable service, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(String);

impl ServiceName {
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        let name = text.trim().to_ascii_lowercase();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(name))
        } else {
            Err(ParseValueError::Service(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who did something: a Slack user id (`U01ABC`) or a CLI user name. Case is kept, because Slack
/// ids are case-sensitive identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Accepts `alice`, `U01ABC`, and either as a mention, `@U01ABC`. (Slack's `<@U01ABC>`
    /// is decoded by the Slack front: `slack::markup`.)
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        let t = text.trim().trim_start_matches('@');
        let ok = !t.is_empty()
            && t.len() <= 64
            && t.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(t.to_string()))
        } else {
            Err(ParseValueError::User(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a conflict group, as the config writes it.
///
/// Unlike a service name it is neither lower-cased nor limited to a character set: the names
/// are recorded in `DeploymentStarted` and in lock keys, and a ledger written before this type
/// existed may hold any non-empty name (the schema's only rule). The lock keys built from the
/// config must equal the ones read back from such a ledger, so the name is kept as written,
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        let name = text.trim();
        if name.is_empty() {
            return Err(ParseValueError::EmptyGroup);
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// So that a list of names joins into text (`names.join(", ")`) like a list of strings.
impl std::borrow::Borrow<str> for GroupName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A Slack user group id (`S0123ABC`): an `S`, then upper-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserGroupId(String);

impl TryFrom<String> for UserGroupId {
    type Error = ParseValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        UserGroupId::parse(&value).ok_or(ParseValueError::UserGroup(value))
    }
}

impl From<UserGroupId> for String {
    fn from(value: UserGroupId) -> String {
        value.0
    }
}

impl UserGroupId {
    /// `None` when the text is not shaped like a user group id.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let mut chars = t.chars();
        let ok = chars.next() == Some('S')
            && t.len() >= 3
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        ok.then(|| Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An entry of a role list in the config (`approvers`, `admins`, `backup_approvers`): a person,
/// or a Slack user group whose members hold the role. Parsed once, when the config is loaded;
/// the Slack front resolves groups to their members, the rules only ever see people.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RoleEntry {
    User(UserId),
    Group(UserGroupId),
}

impl RoleEntry {
    /// A user group id (`S0APPROVERS`) is a group; anything else must be a user id.
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        match UserGroupId::parse(text) {
            Some(group) => Ok(RoleEntry::Group(group)),
            None => UserId::parse(text).map(RoleEntry::User),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RoleEntry::User(user) => user.as_str(),
            RoleEntry::Group(group) => group.as_str(),
        }
    }

    pub fn user(&self) -> Option<&UserId> {
        match self {
            RoleEntry::User(user) => Some(user),
            RoleEntry::Group(_) => None,
        }
    }
}

impl fmt::Display for RoleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for RoleEntry {
    type Error = ParseValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RoleEntry> for String {
    fn from(value: RoleEntry) -> String {
        value.as_str().to_string()
    }
}

/// A link to the release notes or wiki page: http or https, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct WikiLink(String);

impl WikiLink {
    /// Accepts `https://wiki/x`. (Slack's `<https://wiki/x|title>` is decoded by the Slack
    /// front: `slack::markup`.)
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !t.chars().any(char::is_whitespace) => {
                Ok(Self(t.to_string()))
            }
            _ => Err(ParseValueError::Link(text.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text that must not be empty: why a release was rejected, rolled back, or frozen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub fn parse(text: &str) -> Result<Self, ParseValueError> {
        let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if t.is_empty() {
            Err(ParseValueError::EmptyReason)
        } else {
            Ok(Self(t))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_newtype_impls {
    ($($ty:ident),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = ParseValueError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

text_newtype_impls!(TicketKey, ServiceName, GroupName, UserId, WikiLink, Reason);

// The small vocabularies every layer of the domain shares. They live here, below `refusal`,
// `event` and `state`, so that the domain's modules import in one direction only.

/// Where an open release is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    Requested,
    Accepted,
    Deploying,
}

/// A lock is on a service or on a conflict group of services.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum LockKey {
    Service(ServiceName),
    Group(GroupName),
}

/// What a reminder is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// A request has waited for approval longer than `approval_reminder`: the approvers.
    Approval,
    /// ... and for twice that: the backup approvers.
    Escalation,
    /// A deployment runs longer than `deployment_expected`: its requester and admin.
    OverdueDeployment,
    /// A deployment has held its locks longer than `stale_lock`: its requester, admin and the
    /// admins, who may take it over.
    StaleLock,
}

impl ReminderKind {
    pub const ALL: [ReminderKind; 4] = [
        ReminderKind::Approval,
        ReminderKind::Escalation,
        ReminderKind::OverdueDeployment,
        ReminderKind::StaleLock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::Approval => "approval",
            ReminderKind::Escalation => "escalation",
            ReminderKind::OverdueDeployment => "overdue_deployment",
            ReminderKind::StaleLock => "stale_lock",
        }
    }

    /// The stage of a release the reminder is about; it is void once the release moves on.
    pub fn stage(self) -> ReleaseStatus {
        match self {
            ReminderKind::Approval | ReminderKind::Escalation => ReleaseStatus::Requested,
            ReminderKind::OverdueDeployment | ReminderKind::StaleLock => ReleaseStatus::Deploying,
        }
    }
}

impl fmt::Display for ReminderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_keys_are_normalised() {
        assert_eq!(TicketKey::parse("#pay-12").unwrap().as_str(), "PAY-12");
        assert_eq!(TicketKey::parse("PAY-12").unwrap().project(), "PAY");
        for bad in ["", "PAY", "PAY-", "-12", "12-12", "PAY-1x", "PA Y-1"] {
            assert!(TicketKey::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn mentions_are_users_and_links_are_web_links() {
        assert_eq!(UserId::parse("@U01AB").unwrap().as_str(), "U01AB");
        assert!(
            UserId::parse("<@U01AB|bob>").is_err(),
            "Slack's markup is Slack's"
        );
        assert!(WikiLink::parse("<https://wiki/x|Notes>").is_err());
        assert!(WikiLink::parse("ftp://wiki/x").is_err());
        assert!(WikiLink::parse("https://").is_err());
    }

    #[test]
    fn services_are_lower_case_and_reasons_not_empty() {
        assert_eq!(ServiceName::parse("Billing").unwrap().as_str(), "billing");
        assert!(ServiceName::parse("bill ing").is_err());
        assert_eq!(
            Reason::parse("  too   risky ").unwrap().as_str(),
            "too risky"
        );
        assert!(Reason::parse("   ").is_err());
    }

    #[test]
    fn kinds_serialize_as_snake_case_and_belong_to_one_stage() {
        for kind in ReminderKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().to_string())
            );
        }
        assert_eq!(ReminderKind::Approval.stage(), ReleaseStatus::Requested);
        assert_eq!(ReminderKind::Escalation.stage(), ReleaseStatus::Requested);
        assert_eq!(
            ReminderKind::OverdueDeployment.stage(),
            ReleaseStatus::Deploying
        );
        assert_eq!(ReminderKind::StaleLock.stage(), ReleaseStatus::Deploying);
    }

    #[test]
    fn role_entries_are_user_groups_or_users() {
        let entry = |t| RoleEntry::parse(t).unwrap();
        assert!(matches!(entry("S0APPROVERS"), RoleEntry::Group(_)));
        assert!(matches!(entry(" S0ADMINS "), RoleEntry::Group(g) if g.as_str() == "S0ADMINS"));
        assert!(matches!(entry("U0ALICE"), RoleEntry::User(_)));
        assert!(matches!(entry("sam"), RoleEntry::User(_)));
        assert!(
            matches!(entry("S1"), RoleEntry::User(_)),
            "too short for a group"
        );
        assert!(
            matches!(entry("Sam"), RoleEntry::User(_)),
            "a group id is upper-case"
        );
        assert!(RoleEntry::parse("not a user").is_err());
        assert_eq!(entry("S0ADMINS").to_string(), "S0ADMINS");
    }

    #[test]
    fn group_names_are_kept_as_written() {
        assert_eq!(
            GroupName::parse(" Backend-Core ").unwrap().as_str(),
            "Backend-Core"
        );
        assert_eq!(GroupName::parse("  "), Err(ParseValueError::EmptyGroup));
        let names = [
            GroupName::parse("a").unwrap(),
            GroupName::parse("b").unwrap(),
        ];
        assert_eq!(names.join(", "), "a, b");
    }
}
