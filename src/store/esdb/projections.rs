//! EventStoreDB's server-side projections of the ledger (`projections/*.js`), and installing them.
//!
//! They are for people who query EventStoreDB directly: `dobrobot-by-ticket` and
//! `dobrobot-by-service` link each ledger event into one stream per ticket and per service, and
//! `dobrobot-queue` keeps the open requests as its state. dobrobot itself never reads them; its
//! own projections are in `src/projections/`.
//!
//! The JavaScript is embedded in the binary. What depends on the deployment is written into it at
//! install time: each file declares it as a constant on a line marked `@dobrobot-install` (the
//! ledger stream of the configured environment, the configured conflict groups and services),
//! and [`Projection::source`] rewrites those lines. The files as they are in the repository are
//! valid projections for a default config.
//!
//! Installing is idempotent: a projection that exists is updated (its query and emit setting;
//! the server keeps its checkpoint and state), one that does not is created, continuous and
//! running. The server answers an update of an unknown projection with NOT_FOUND, which is how
//! the two are told apart without a race-prone look-up first.

use std::fmt;
use std::time::Duration;

use kurrentdb::{
    ClientSettings, CreateProjectionOptions, ProjectionClient, UpdateProjectionOptions,
};
use serde_json::json;
use thiserror::Error;

use super::{is_esdb_url, redact};
use crate::domain::{Policy, ServiceName};

/// How long one call to the server may take before installing gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The comment that marks a line `source` rewrites.
const INSTALL_MARKER: &str = "// @dobrobot-install:";

/// One of the server-side projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    ByTicket,
    ByService,
    Queue,
}

impl Projection {
    /// Every projection, in the order they are installed.
    pub const ALL: [Projection; 3] = [
        Projection::ByTicket,
        Projection::ByService,
        Projection::Queue,
    ];

    /// The projection's name on the server.
    pub fn name(self) -> &'static str {
        match self {
            Projection::ByTicket => "dobrobot-by-ticket",
            Projection::ByService => "dobrobot-by-service",
            Projection::Queue => "dobrobot-queue",
        }
    }

    /// The file in the repository, relative to its root.
    pub fn file(self) -> &'static str {
        match self {
            Projection::ByTicket => "projections/by-ticket.js",
            Projection::ByService => "projections/by-service.js",
            Projection::Queue => "projections/queue.js",
        }
    }

    /// The file as it is in the repository, before `source` fills in the deployment.
    pub fn template(self) -> &'static str {
        match self {
            Projection::ByTicket => include_str!("../../../projections/by-ticket.js"),
            Projection::ByService => include_str!("../../../projections/by-service.js"),
            Projection::Queue => include_str!("../../../projections/queue.js"),
        }
    }

    /// Whether the projection writes events (`linkTo`): the server faults a projection that
    /// does without its emit setting.
    pub fn emits(self) -> bool {
        match self {
            Projection::ByTicket | Projection::ByService => true,
            Projection::Queue => false,
        }
    }

    /// The JavaScript to install for the ledger `stream` under `policy`.
    pub fn source(self, stream: &str, policy: &Policy) -> String {
        let mut values = vec![("LEDGER_STREAM", json!(stream))];
        match self {
            Projection::ByTicket => {}
            Projection::ByService => {
                values.push(("CONFIGURED_SERVICES", json!(configured_services(policy))));
            }
            Projection::Queue => {
                let groups: Vec<_> = policy
                    .conflict_groups
                    .iter()
                    .map(|g| json!({ "name": g.name, "services": g.services }))
                    .collect();
                values.push(("CONFLICT_GROUPS", json!(groups)));
            }
        }
        let mut source = self.template().to_string();
        for (name, value) in values {
            source = set_constant(self, &source, name, &value);
        }
        source
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What installing did to a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Updated => "updated",
        })
    }
}

#[derive(Debug, Error)]
pub enum InstallError {
    #[error(
        "server-side projections need EventStoreDB (KurrentDB), but the store is `{url}`; \
         set `store` (or DOBROBOT_STORE, or --store) to an esdb:// or kurrentdb:// URL. \
         The embedded SQLite ledger has no server to run them; dobrobot's own projections \
         (queue, history, ...) work on it as they are"
    )]
    NotEventStoreDb { url: String },
    #[error("the store URL `{url}` is not a valid EventStoreDB connection string{reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot {action} the projection {projection} on EventStoreDB: {source}")]
    Server {
        projection: Projection,
        action: &'static str,
        #[source]
        source: kurrentdb::Error,
    },
    #[error(
        "EventStoreDB did not answer within {timeout:?} while installing {projection}; \
         is it running and reachable at the configured URL?"
    )]
    Timeout {
        projection: Projection,
        timeout: Duration,
    },
}

/// Creates or updates every projection on the EventStoreDB at `store_url`, for the ledger
/// `stream` under `policy`. Returns what was done to each, in [`Projection::ALL`] order; stops at
/// the first failure (what was installed before it stays installed, and a rerun is safe).
pub async fn install(
    store_url: &str,
    stream: &str,
    policy: &Policy,
) -> Result<Vec<(Projection, Action)>, InstallError> {
    let settings = settings(store_url)?;
    let client = ProjectionClient::new(settings).map_err(|error| InstallError::BadUrl {
        url: redact(store_url),
        reason: format!(": {error}"),
    })?;
    let mut done = Vec::with_capacity(Projection::ALL.len());
    for projection in Projection::ALL {
        let action = install_one(&client, projection, projection.source(stream, policy)).await?;
        tracing::info!(projection = projection.name(), %action, stream, "projection installed");
        done.push((projection, action));
    }
    Ok(done)
}

async fn install_one(
    client: &ProjectionClient,
    projection: Projection,
    query: String,
) -> Result<Action, InstallError> {
    let timeout = |_| InstallError::Timeout {
        projection,
        timeout: CALL_TIMEOUT,
    };
    let update = UpdateProjectionOptions::default().emit(projection.emits());
    let updated = tokio::time::timeout(
        CALL_TIMEOUT,
        client.update(projection.name(), query.clone(), &update),
    )
    .await
    .map_err(timeout)?;
    match updated {
        Ok(()) => Ok(Action::Updated),
        Err(kurrentdb::Error::ResourceNotFound) => {
            // Continuous, running, not tracking emitted streams (the server allows tracking
            // only with emit enabled at creation, which the create call cannot say).
            let create = CreateProjectionOptions::default().emit(projection.emits());
            tokio::time::timeout(
                CALL_TIMEOUT,
                client.create(projection.name(), query, &create),
            )
            .await
            .map_err(timeout)?
            .map_err(|source| InstallError::Server {
                projection,
                action: "create",
                source,
            })?;
            Ok(Action::Created)
        }
        Err(source) => Err(InstallError::Server {
            projection,
            action: "update",
            source,
        }),
    }
}

/// The client settings of an EventStoreDB store URL; any other store is refused.
fn settings(store_url: &str) -> Result<ClientSettings, InstallError> {
    if !is_esdb_url(store_url) {
        return Err(InstallError::NotEventStoreDb {
            url: redact(store_url),
        });
    }
    store_url
        .parse::<ClientSettings>()
        .map_err(|error| InstallError::BadUrl {
            url: redact(store_url),
            // The parse error repeats the whole URL, credentials included: keep only its kind.
            reason: error.error().map_or(String::new(), |e| format!(": {e}")),
        })
}

/// Every service the config names, in a project's list or a conflict group, sorted.
fn configured_services(policy: &Policy) -> Vec<ServiceName> {
    let mut services: Vec<ServiceName> = policy
        .services_by_project
        .values()
        .flatten()
        .chain(policy.conflict_groups.iter().flat_map(|g| &g.services))
        .cloned()
        .collect();
    services.sort();
    services.dedup();
    services
}

/// Rewrites the marked line that declares `name` to give it `value`.
fn set_constant(
    projection: Projection,
    source: &str,
    name: &str,
    value: &serde_json::Value,
) -> String {
    let declaration = format!("var {name} = ");
    let mut found = false;
    let lines: Vec<String> = source
        .lines()
        .map(|line| match line.find(INSTALL_MARKER) {
            Some(marker) if line.starts_with(&declaration) => {
                found = true;
                format!("{declaration}{value}; {}", &line[marker..])
            }
            _ => line.to_string(),
        })
        .collect();
    assert!(
        found,
        "{} declares no `{declaration}...; {INSTALL_MARKER}` line: the file and \
         store/esdb/projections.rs disagree",
        projection.file()
    );
    let mut rewritten = lines.join("\n");
    if source.ends_with('\n') {
        rewritten.push('\n');
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConflictGroup, GroupName};

    fn service(name: &str) -> ServiceName {
        ServiceName::parse(name).expect("a valid service name")
    }

    fn policy() -> Policy {
        Policy {
            services_by_project: [
                ("PAY".to_string(), vec![service("billing")]),
                ("API".to_string(), vec![service("api"), service("billing")]),
            ]
            .into(),
            conflict_groups: vec![ConflictGroup {
                name: GroupName::parse("backend-core").unwrap(),
                services: [service("api"), service("ledger")].into(),
            }],
            ..Policy::default()
        }
    }

    #[test]
    fn the_deployment_is_written_into_the_marked_lines() {
        let queue = Projection::Queue.source("dobrobot-ledger-staging", &policy());
        assert!(
            queue
                .contains("var LEDGER_STREAM = \"dobrobot-ledger-staging\"; // @dobrobot-install:")
        );
        assert!(queue.contains(
            r#"var CONFLICT_GROUPS = [{"name":"backend-core","services":["api","ledger"]}]; // @dobrobot-install:"#
        ));
        assert!(!queue.contains("dobrobot-ledger-prod"));
        let by_service = Projection::ByService.source("dobrobot-ledger-staging", &policy());
        assert!(by_service.contains(
            r#"var CONFIGURED_SERVICES = ["api","billing","ledger"]; // @dobrobot-install:"#
        ));
        let by_ticket = Projection::ByTicket.source("dobrobot-ledger-staging", &policy());
        assert!(by_ticket.contains("fromStream(LEDGER_STREAM)"));
        assert!(by_ticket.contains("\"dobrobot-ledger-staging\""));
    }

    #[test]
    fn the_default_config_gives_the_files_as_they_are() {
        for projection in Projection::ALL {
            assert_eq!(
                projection.source("dobrobot-ledger-prod", &Policy::default()),
                projection.template(),
                "{projection}"
            );
        }
    }

    #[test]
    fn only_eventstoredb_urls_are_accepted() {
        assert!(matches!(
            settings("sqlite://data/ledger.db"),
            Err(InstallError::NotEventStoreDb { .. })
        ));
        assert!(matches!(
            settings("esdb://:not-a-port"),
            Err(InstallError::BadUrl { .. })
        ));
        for url in [
            "esdb://localhost:2113?tls=false",
            "esdb+discover://cluster.example:2113",
            "kurrentdb://admin:changeit@localhost:2113?tls=false",
        ] {
            assert!(settings(url).is_ok(), "{url}");
        }
    }
}
