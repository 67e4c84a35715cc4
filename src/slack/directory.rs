//! Who people are in Slack: display names (`users.info`, cached) for the actor's name, and the
//! members of the user groups that config names as approvers or admins
//! (`usergroups.users.list`, cached and refreshed), expanded into the policy the ledger decides
//! by. The ledger only ever sees user ids; a group is a Slack notion and is resolved here.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::config::Roles;
use crate::domain::{Policy, UserId};

use super::api::SlackApi;

/// How long a display name is trusted before `users.info` is asked again.
const NAME_TTL: Duration = Duration::from_secs(60 * 60);

/// A role entry of the config that names a Slack user group (`S0123ABC`) rather than a user.
pub fn is_user_group(entry: &str) -> bool {
    let mut chars = entry.chars();
    chars.next() == Some('S')
        && entry.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether an id is a Slack user id (`U...` or `W...`), which Slack renders as a mention.
pub fn is_slack_user(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('U' | 'W'))
        && id.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// How a person or a configured role entry is written in a Slack message.
pub fn mention(entry: &str) -> String {
    if is_user_group(entry) {
        format!("<!subteam^{entry}>")
    } else if is_slack_user(entry) {
        format!("<@{entry}>")
    } else {
        entry.to_string()
    }
}

pub struct Directory {
    api: SlackApi,
    /// The policy as configured; role entries may be user groups.
    configured: Arc<Policy>,
    roles: Roles,
    names: Mutex<HashMap<String, (String, Instant)>>,
    groups: Mutex<HashMap<String, Vec<UserId>>>,
}

impl Directory {
    pub fn new(api: SlackApi, configured: Arc<Policy>, roles: Roles) -> Self {
        Directory {
            api,
            configured,
            roles,
            names: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// The configured role entries (user ids and user groups).
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// The name to record for `user`: Slack's display name, or the id when Slack cannot say.
    pub async fn display_name(&self, user: &UserId) -> String {
        let id = user.as_str();
        if let Some((name, at)) = self.names.lock().expect("names lock").get(id)
            && at.elapsed() < NAME_TTL
        {
            return name.clone();
        }
        match self.api.user_name(id).await {
            Ok(name) => {
                let name = name.unwrap_or_else(|| id.to_string());
                self.names
                    .lock()
                    .expect("names lock")
                    .insert(id.to_string(), (name.clone(), Instant::now()));
                name
            }
            Err(error) => {
                warn!(user = id, %error, "users.info failed; recording the id as the name");
                id.to_string()
            }
        }
    }

    /// Asks Slack for the members of every configured user group. A group Slack cannot list
    /// keeps the members it had.
    pub async fn refresh_groups(&self) {
        let entries: BTreeSet<&String> = self
            .roles
            .approvers
            .iter()
            .chain(&self.roles.admins)
            .filter(|e| is_user_group(e))
            .collect();
        for group in entries {
            match self.api.group_members(group).await {
                Ok(members) => {
                    let members: Vec<UserId> = members
                        .iter()
                        .filter_map(|m| UserId::parse(m).ok())
                        .collect();
                    info!(group = %group, members = members.len(), "user group loaded");
                    self.groups
                        .lock()
                        .expect("groups lock")
                        .insert(group.clone(), members);
                }
                Err(error) => warn!(group = %group, %error, "usergroups.users.list failed"),
            }
        }
    }

    /// The configured policy with each user group replaced by its members.
    pub fn expanded_policy(&self) -> Policy {
        let groups = self.groups.lock().expect("groups lock");
        let expand = |set: &BTreeSet<UserId>| -> BTreeSet<UserId> {
            set.iter()
                .flat_map(|entry| {
                    if is_user_group(entry.as_str()) {
                        groups.get(entry.as_str()).cloned().unwrap_or_default()
                    } else {
                        vec![entry.clone()]
                    }
                })
                .collect()
        };
        let mut policy = Policy::clone(&self.configured);
        policy.approvers = expand(&self.configured.approvers);
        policy.admins = expand(&self.configured.admins);
        policy
    }

    /// The people of a role list of the config, groups expanded (for DMs).
    pub fn people(&self, entries: &[String]) -> Vec<String> {
        let groups = self.groups.lock().expect("groups lock");
        let mut seen = BTreeSet::new();
        entries
            .iter()
            .flat_map(|entry| {
                if is_user_group(entry) {
                    groups
                        .get(entry)
                        .map(|m| m.iter().map(|u| u.as_str().to_string()).collect())
                        .unwrap_or_default()
                } else {
                    vec![entry.clone()]
                }
            })
            .filter(|p| seen.insert(p.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_entries_are_groups_users_or_names() {
        assert!(is_user_group("S0APPROVERS"));
        assert!(!is_user_group("U0ALICE"));
        assert!(!is_user_group("sam"));
        assert_eq!(mention("S0ADMINS"), "<!subteam^S0ADMINS>");
        assert_eq!(mention("U0ALICE"), "<@U0ALICE>");
        assert_eq!(mention("alice"), "alice");
    }
}
