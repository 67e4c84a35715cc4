//! Who people are in Slack: display names (`users.info`, cached) for the actor's name, and the
//! members of the user groups the recorded policy names as approvers or admins
//! (`usergroups.users.list`, cached and refreshed). The front records their members in the
//! ledger's policy when they change (`PolicyChanged`, cause `directory`), and the rules decide by
//! the people recorded there; a group is a Slack notion and is resolved here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::domain::{RoleEntry, UserGroupId, UserId};

use super::api::SlackApi;

/// How long a display name is trusted before `users.info` is asked again.
const NAME_TTL: Duration = Duration::from_secs(60 * 60);

pub struct Directory {
    api: SlackApi,
    names: Mutex<HashMap<String, (String, Instant)>>,
    groups: Mutex<HashMap<UserGroupId, Vec<UserId>>>,
}

impl Directory {
    pub fn new(api: SlackApi) -> Self {
        Directory {
            api,
            names: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        }
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

    /// Asks Slack for the members of every user group the roles name. A group Slack cannot
    /// list keeps the members it had.
    pub async fn refresh_groups(&self, roles: &crate::domain::policy::Roles) {
        let groups: BTreeSet<&UserGroupId> = roles
            .approvers
            .iter()
            .chain(&roles.admins)
            .filter_map(|entry| match entry {
                RoleEntry::Group(group) => Some(group),
                RoleEntry::User(_) => None,
            })
            .collect();
        for group in groups {
            match self.api.group_members(group.as_str()).await {
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

    /// The members of each user group listed so far.
    pub fn groups(&self) -> BTreeMap<UserGroupId, BTreeSet<UserId>> {
        self.groups
            .lock()
            .expect("groups lock")
            .iter()
            .map(|(group, members)| (group.clone(), members.iter().cloned().collect()))
            .collect()
    }

    /// The people of a role list of the config, groups expanded (for DMs).
    pub fn people(&self, entries: &[RoleEntry]) -> Vec<String> {
        self.members(entries)
            .into_iter()
            .map(|user| user.as_str().to_string())
            .collect()
    }

    /// The people of role entries, each once, in order; a group Slack has not listed has none.
    fn members(&self, entries: &[RoleEntry]) -> Vec<UserId> {
        let groups = self.groups.lock().expect("groups lock");
        let mut seen = BTreeSet::new();
        entries
            .iter()
            .flat_map(|entry| match entry {
                RoleEntry::Group(group) => groups.get(group).cloned().unwrap_or_default(),
                RoleEntry::User(user) => vec![user.clone()],
            })
            .filter(|user| seen.insert(user.clone()))
            .collect()
    }
}
