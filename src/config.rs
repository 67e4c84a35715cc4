//! Configuration: a TOML file (`--config` or `DOBROBOT_CONFIG`), then environment variables,
//! over built-in defaults. With no file at all dobrobot runs on the defaults, on the embedded
//! store at `sqlite://data/ledger.db`.
//!
//! Unknown keys are an error, so that a typo (`aprovers`) is caught at start-up rather than
//! silently giving nobody the approver role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use thiserror::Error;

use crate::domain::policy::DEFAULT_TICKET_PATTERN;
use crate::domain::tracker::OnUnavailable;
use crate::domain::{
    ConflictGroup, GroupName, ParseValueError, Policy, RoleEntry, ServiceName, TrackerRules,
};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config: [[http.pipeline_tokens]]: {0}")]
    Pipeline(String),
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("config: ticket_pattern `{pattern}` is not a valid regular expression: {source}")]
    Pattern {
        pattern: String,
        source: Box<regex::Error>,
    },
    #[error("config: {key}: {source}")]
    Value {
        key: String,
        source: ParseValueError,
    },
    #[error("environment variable {name}=`{value}`: expected true or false")]
    Bool { name: &'static str, value: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("config: [tracker] {0}")]
    Tracker(String),
    #[error("config: [slack] {0}")]
    Reminders(#[from] crate::domain::reminders::SettingsError),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub environment: String,
    pub store: String,
    pub ticket_pattern: String,
    pub require_wiki_link: bool,
    pub four_eyes: bool,
    /// Prefix that turns a ticket key into a link, e.g. `https://tracker.example.com/browse/`.
    pub tracker_url: Option<String>,
    /// `[tracker]`: ticket checks in Jira on `dobro`; off when absent.
    pub tracker: Option<TrackerConfig>,
    pub roles: Roles,
    /// Ticket project key -> the services its releases deploy.
    pub services: BTreeMap<String, Vec<String>>,
    pub conflict_groups: Vec<ConflictGroupConfig>,
    /// The Slack front; tokens usually come from the environment instead.
    pub slack: SlackConfig,
    /// `[http]`: where `serve` listens and who may read the API.
    pub http: HttpConfig,
    /// The writer snapshots its state every so many events (`DOBROBOT_SNAPSHOT_EVERY`), so a
    /// process starts from the last snapshot instead of revision 0.
    pub snapshot_every: u64,
    /// The file of the persisted read models (`DOBROBOT_MODELS`); by default beside an embedded
    /// store (`<store file>.models`), or `dobrobot-<environment>.models` in the working
    /// directory on EventStoreDB.
    pub models: Option<String>,
    /// `[sinks]`: where deployments are marked (Grafana, PagerDuty, webhooks); none by default.
    pub sinks: SinksConfig,
    /// `[locks]`: when a stuck deployment's locks may be taken over.
    pub locks: LocksConfig,
    /// The file this config was read from, if any, and its SHA-256: a reload reads it again,
    /// and the recorded policy names the hash.
    #[serde(skip)]
    pub file: Option<ConfigFile>,
}

/// A config file read: where, and the SHA-256 (hex) of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// `[locks]`: how old a deployment must be before an admin alone may take it over
/// (`dep takeover`); a younger one takes an admin and an approver (`--force`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocksConfig {
    /// A duration (`30m`, `2h`); `0s` lets an admin take over at once.
    pub takeover_after: String,
}

impl Default for LocksConfig {
    fn default() -> Self {
        LocksConfig {
            takeover_after: "30m".into(),
        }
    }
}

/// `[sinks]`: the release markers `serve` delivers on each deployment's start, finish and
/// rollback. Each sink is off unless its table is present; its secret comes from the
/// environment only (`#[serde(skip)]`), so a config file in a repository holds none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    pub grafana: Option<GrafanaSink>,
    pub pagerduty: Option<PagerDutySink>,
    pub webhooks: Vec<WebhookSink>,
    /// How many times a marker is tried before it is dead-lettered.
    pub attempts: u32,
    /// How long the delivering replica's lease lasts unless renewed (renewed at a third).
    pub lease: String,
    /// How long one request may take.
    pub timeout: String,
    /// The first wait before a retry; it doubles (with jitter) up to a minute.
    pub retry_delay: String,
}

impl Default for SinksConfig {
    fn default() -> Self {
        SinksConfig {
            grafana: None,
            pagerduty: None,
            webhooks: Vec::new(),
            attempts: 8,
            lease: "10s".into(),
            timeout: "5s".into(),
            retry_delay: "1s".into(),
        }
    }
}

impl SinksConfig {
    /// Whether any sink is configured.
    pub fn any(&self) -> bool {
        self.grafana.is_some() || self.pagerduty.is_some() || !self.webhooks.is_empty()
    }
}

/// `[sinks.grafana]`: annotations through Grafana's HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrafanaSink {
    /// Grafana's base URL, e.g. `https://grafana.example.com`.
    pub url: String,
    /// Ties the annotations to one dashboard; without it they are organization-wide, shown
    /// wherever an annotation query asks for the `dobrobot` tag.
    pub dashboard_uid: Option<String>,
    /// A service account token (`GRAFANA_TOKEN`).
    #[serde(skip)]
    pub token: Option<String>,
}

/// `[sinks.pagerduty]`: change events through the Events API v2.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySink {
    #[serde(default = "pagerduty_url")]
    pub url: String,
    /// The integration key of the service's Events API v2 integration
    /// (`PAGERDUTY_ROUTING_KEY`).
    #[serde(skip)]
    pub routing_key: Option<String>,
}

fn pagerduty_url() -> String {
    "https://events.pagerduty.com".into()
}

/// `[[sinks.webhooks]]`: a signed JSON POST of each marker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSink {
    /// Names the webhook in the deliveries stream, the logs and the metrics.
    pub name: String,
    pub url: String,
    /// The environment variable that holds the signing secret.
    pub secret_env: String,
    /// Read from `secret_env`.
    #[serde(skip)]
    pub secret: Option<String>,
}

/// `[http]`: the HTTP server of `serve` (`/health`, `/ready`, the read API, Slack's endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where the HTTP server listens (`DOBROBOT_HTTP_ADDR`); loopback unless said otherwise,
    /// because the API holds who did what.
    pub addr: String,
    /// SHA-256 hashes (hex, optionally `sha256:`-prefixed) of the bearer tokens that may read
    /// `/api` (`DOBROBOT_READ_TOKENS`, comma-separated). The tokens themselves are never stored.
    pub read_tokens: Vec<TokenHash>,
    /// A header set by the authenticating proxy in front (e.g. oauth2-proxy's
    /// `X-Forwarded-Email`): a request carrying it may read `/api`.
    pub trusted_user_header: Option<String>,
    /// Where people reach the pages (`DOBROBOT_PUBLIC_URL`), e.g. `https://dobrobot.example.com`:
    /// Slack's replies and App Home link to the timeline there.
    pub public_url: Option<String>,
    /// `[[http.pipeline_tokens]]`: the tokens CI/CD jobs send commands with
    /// (`POST /api/v1/commands`, `dobrobot deploy --server`), each acting as one actor with
    /// its roles. Only their SHA-256 is stored. A pipeline token may read the API too.
    pub pipeline_tokens: Vec<PipelineToken>,
}

/// A pipeline's token: who its commands come from and what that actor may do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineToken {
    /// The token's SHA-256 (`printf %s "$TOKEN" | sha256sum`).
    pub hash: TokenHash,
    /// The actor its commands are recorded as (`ci-deployer`).
    pub actor: crate::domain::UserId,
    /// Roles the actor holds besides a requester's: `approver`, `admin`.
    #[serde(default)]
    pub roles: Vec<PipelineRole>,
}

/// A role a pipeline's actor may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineRole {
    Approver,
    Admin,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8080".into(),
            read_tokens: Vec::new(),
            trusted_user_header: None,
            public_url: None,
            pipeline_tokens: Vec::new(),
        }
    }
}

/// The SHA-256 of a read token, as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn parse(text: &str) -> Result<TokenHash, String> {
        let hex_text = text.trim();
        let hex_text = hex_text.strip_prefix("sha256:").unwrap_or(hex_text);
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut hash).map_err(|_| {
            "expected the token's SHA-256 as 64 hex digits (printf %s \"$TOKEN\" | sha256sum)"
                .to_string()
        })?;
        Ok(TokenHash(hash))
    }

    /// The hash of a token as presented.
    pub fn of(token: &str) -> TokenHash {
        use sha2::Digest;
        TokenHash(sha2::Sha256::digest(token.as_bytes()).into())
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TokenHash::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `[tracker]`: on `dobro`, dobrobot fetches the ticket from Jira and checks what is required
/// here. Credentials come from the environment only: `JIRA_EMAIL` and `JIRA_API_TOKEN` on
/// Cloud, `JIRA_TOKEN` (a personal access token) on Server / Data Center.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    pub kind: TrackerKind,
    /// The Jira site, e.g. `https://example.atlassian.net` (`DOBROBOT_TRACKER_BASE_URL`).
    pub base_url: String,
    pub deployment: JiraDeployment,
    /// How long a lookup may take in all, a retry after a rate limit included.
    pub timeout: String,
    /// How long an answer (found or not found) is reused; `0s` turns the cache off.
    pub cache: String,
    pub on_unavailable: OnUnavailable,
    pub statuses: Vec<String>,
    pub status_categories: Vec<String>,
    pub require_fix_version: bool,
    pub require_assignee: bool,
    pub issue_types: Vec<String>,
    /// One of these labels is required.
    pub labels: Vec<String>,
    /// `JIRA_EMAIL`
    #[serde(skip)]
    pub email: Option<String>,
    /// `JIRA_API_TOKEN` (Cloud)
    #[serde(skip)]
    pub api_token: Option<Secret>,
    /// `JIRA_TOKEN` (Server / Data Center personal access token)
    #[serde(skip)]
    pub token: Option<Secret>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            kind: TrackerKind::Jira,
            base_url: String::new(),
            deployment: JiraDeployment::Cloud,
            timeout: "3s".into(),
            cache: "30s".into(),
            on_unavailable: OnUnavailable::Refuse,
            statuses: Vec::new(),
            status_categories: Vec::new(),
            require_fix_version: false,
            require_assignee: false,
            issue_types: Vec::new(),
            labels: Vec::new(),
            email: None,
            api_token: None,
            token: None,
        }
    }
}

impl TrackerConfig {
    /// What the policy requires of a ticket in the tracker.
    pub fn rules(&self) -> TrackerRules {
        TrackerRules {
            statuses: self.statuses.clone(),
            status_categories: self.status_categories.clone(),
            require_fix_version: self.require_fix_version,
            require_assignee: self.require_assignee,
            issue_types: self.issue_types.clone(),
            labels: self.labels.clone(),
            on_unavailable: self.on_unavailable,
        }
    }
}

/// The trackers dobrobot can ask; Jira only, for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackerKind {
    #[default]
    Jira,
}

/// Which Jira: Cloud (REST API 3, email and API token) or Server / Data Center (REST API 2,
/// a personal access token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JiraDeployment {
    #[default]
    Cloud,
    Server,
}

/// A credential from the environment, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[slack]`: how dobrobot reaches Slack and where it talks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// `xoxb-...` for the Web API (`SLACK_BOT_TOKEN`).
    pub bot_token: Option<String>,
    /// `xapp-...`: when set, Socket Mode is used (`SLACK_APP_TOKEN`).
    pub app_token: Option<String>,
    /// Verifies the Events API's signed requests (`SLACK_SIGNING_SECRET`).
    pub signing_secret: Option<String>,
    /// The Web API's base URL (`SLACK_API_URL`); tests point it at a local fake.
    pub api_url: String,
    /// The channel where each release gets its message (`DOBROBOT_SLACK_CHANNEL`).
    pub release_channel: Option<String>,
    /// How approvers and admins are told: `"group"` mentions the configured user groups (or
    /// the people) in the release's thread, `"dm"` messages each of them.
    pub notify: Notify,
    /// Mentioned when a request waits for approval for twice `approval_reminder`.
    pub backup_approvers: Vec<RoleEntry>,
    /// A request waiting this long for approval gets a reminder in its thread.
    pub approval_reminder: String,
    /// A deployment running longer than this reminds its requester and admin.
    pub deployment_expected: String,
    /// A lock held this long is flagged as stale.
    pub stale_lock: String,
    /// No reminders between these times (UTC), e.g. `"22:00-08:00"`.
    pub quiet_hours: Option<String>,
}

/// How notices reach people (`[slack] notify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// A mention of the role's user groups or people in the release's thread.
    #[default]
    Group,
    /// A direct message to each person.
    Dm,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            bot_token: None,
            app_token: None,
            signing_secret: None,
            api_url: "https://slack.com/api/".into(),
            release_channel: None,
            notify: Notify::Group,
            backup_approvers: Vec::new(),
            approval_reminder: "30m".into(),
            deployment_expected: "1h".into(),
            stale_lock: "4h".into(),
            quiet_hours: None,
        }
    }
}

/// `[roles]`: user ids and Slack user groups (`S0123ABC`), parsed as the file is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Roles {
    pub approvers: Vec<RoleEntry>,
    pub admins: Vec<RoleEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictGroupConfig {
    pub name: GroupName,
    pub services: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            environment: "prod".into(),
            store: "sqlite://data/ledger.db".into(),
            ticket_pattern: DEFAULT_TICKET_PATTERN.into(),
            require_wiki_link: true,
            four_eyes: true,
            tracker_url: None,
            tracker: None,
            roles: Roles::default(),
            services: BTreeMap::new(),
            conflict_groups: Vec::new(),
            slack: SlackConfig::default(),
            http: HttpConfig::default(),
            snapshot_every: crate::snapshots::EVERY,
            models: None,
            sinks: SinksConfig::default(),
            file: None,
            locks: LocksConfig::default(),
        }
    }
}

/// The environment variables that override the file. Lists are comma-separated.
pub const ENV_OVERRIDES: &[&str] = &[
    "DOBROBOT_ENVIRONMENT",
    "DOBROBOT_STORE",
    "DOBROBOT_TICKET_PATTERN",
    "DOBROBOT_REQUIRE_WIKI_LINK",
    "DOBROBOT_FOUR_EYES",
    "DOBROBOT_TRACKER_URL",
    "DOBROBOT_APPROVERS",
    "DOBROBOT_ADMINS",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "DOBROBOT_HTTP_ADDR",
    "DOBROBOT_PUBLIC_URL",
    "DOBROBOT_READ_TOKENS",
    "DOBROBOT_SNAPSHOT_EVERY",
    "DOBROBOT_MODELS",
    "DOBROBOT_SLACK_CHANNEL",
    "GRAFANA_TOKEN",
    "PAGERDUTY_ROUTING_KEY",
    "DOBROBOT_TRACKER_BASE_URL",
    "JIRA_EMAIL",
    "JIRA_API_TOKEN",
    "JIRA_TOKEN",
];

impl Config {
    /// Reads the file if given, then applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let base = match path {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        base.with_env(|name| std::env::var(name).ok())
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        use sha2::Digest;
        config.file = Some(ConfigFile {
            path: path.to_path_buf(),
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        });
        Ok(config)
    }

    /// Applies overrides from `lookup` (the environment, or a map in tests).
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(v) = lookup("DOBROBOT_ENVIRONMENT") {
            self.environment = v;
        }
        if let Some(v) = lookup("DOBROBOT_STORE") {
            self.store = v;
        }
        if let Some(v) = lookup("DOBROBOT_TICKET_PATTERN") {
            self.ticket_pattern = v;
        }
        if let Some(v) = lookup("DOBROBOT_REQUIRE_WIKI_LINK") {
            self.require_wiki_link = parse_bool("DOBROBOT_REQUIRE_WIKI_LINK", v)?;
        }
        if let Some(v) = lookup("DOBROBOT_FOUR_EYES") {
            self.four_eyes = parse_bool("DOBROBOT_FOUR_EYES", v)?;
        }
        if let Some(v) = lookup("DOBROBOT_TRACKER_URL") {
            self.tracker_url = Some(v).filter(|v| !v.is_empty());
        }
        let entries = |name: &str, v: String| -> Result<Vec<RoleEntry>, ConfigError> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|entry| RoleEntry::parse(entry).map_err(|source| value_error(name, source)))
                .collect()
        };
        if let Some(v) = lookup("DOBROBOT_APPROVERS") {
            self.roles.approvers = entries("DOBROBOT_APPROVERS", v)?;
        }
        if let Some(v) = lookup("DOBROBOT_ADMINS") {
            self.roles.admins = entries("DOBROBOT_ADMINS", v)?;
        }
        let secret = |v: String| Some(v).filter(|v| !v.is_empty());
        if let Some(v) = lookup("SLACK_BOT_TOKEN") {
            self.slack.bot_token = secret(v);
        }
        if let Some(v) = lookup("SLACK_APP_TOKEN") {
            self.slack.app_token = secret(v);
        }
        if let Some(v) = lookup("SLACK_SIGNING_SECRET") {
            self.slack.signing_secret = secret(v);
        }
        if let Some(v) = lookup("SLACK_API_URL") {
            self.slack.api_url = v;
        }
        if let Some(v) = lookup("DOBROBOT_HTTP_ADDR") {
            self.http.addr = v;
        }
        if let Some(v) = lookup("DOBROBOT_PUBLIC_URL") {
            self.http.public_url = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = lookup("DOBROBOT_SNAPSHOT_EVERY") {
            self.snapshot_every = match v.trim().parse() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ConfigError::Env {
                        name: "DOBROBOT_SNAPSHOT_EVERY",
                        reason: format!("`{v}` is not a number of events (1 or more)"),
                    });
                }
            };
        }
        if let Some(v) = lookup("DOBROBOT_MODELS") {
            self.models = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = lookup("DOBROBOT_READ_TOKENS") {
            self.http.read_tokens = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|hash| {
                    TokenHash::parse(hash).map_err(|reason| ConfigError::Env {
                        name: "DOBROBOT_READ_TOKENS",
                        reason,
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = lookup("DOBROBOT_SLACK_CHANNEL") {
            self.slack.release_channel = secret(v);
        }
        if let Some(grafana) = &mut self.sinks.grafana
            && let Some(v) = lookup("GRAFANA_TOKEN")
        {
            grafana.token = secret(v);
        }
        if let Some(pagerduty) = &mut self.sinks.pagerduty
            && let Some(v) = lookup("PAGERDUTY_ROUTING_KEY")
        {
            pagerduty.routing_key = secret(v);
        }
        for webhook in &mut self.sinks.webhooks {
            if let Some(v) = lookup(&webhook.secret_env) {
                webhook.secret = secret(v);
            }
        }
        if let Some(v) = lookup("DOBROBOT_TRACKER_BASE_URL").filter(|v| !v.trim().is_empty()) {
            self.tracker
                .get_or_insert_with(TrackerConfig::default)
                .base_url = v;
        }
        if let Some(tracker) = &mut self.tracker {
            tracker.email = lookup("JIRA_EMAIL").filter(|v| !v.is_empty());
            tracker.api_token = lookup("JIRA_API_TOKEN").and_then(secret).map(Secret);
            tracker.token = lookup("JIRA_TOKEN").and_then(secret).map(Secret);
        }
        Ok(self)
    }

    /// The ledger stream of the configured environment.
    pub fn stream(&self) -> String {
        crate::ledger::stream_name(&self.environment)
    }

    /// Where the persisted read models are (see `models`).
    pub fn models_path(&self) -> std::path::PathBuf {
        if let Some(path) = &self.models {
            return path.into();
        }
        match self
            .store
            .strip_prefix("sqlite://")
            .or_else(|| self.store.strip_prefix("sqlite:"))
        {
            Some(file) => format!("{file}.models").into(),
            None => format!("dobrobot-{}.models", self.environment).into(),
        }
    }

    /// The release rules this config describes.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let pattern = Regex::new(&self.ticket_pattern).map_err(|source| ConfigError::Pattern {
            pattern: self.ticket_pattern.clone(),
            source: Box::new(source),
        })?;
        // User groups are Slack's to resolve (`slack::directory`): the rules see people only.
        let users = |entries: &[RoleEntry]| -> BTreeSet<_> {
            entries
                .iter()
                .filter_map(RoleEntry::user)
                .cloned()
                .collect()
        };
        let services = |key: &str, names: &[String]| -> Result<Vec<ServiceName>, ConfigError> {
            names
                .iter()
                .map(|n| ServiceName::parse(n).map_err(|source| value_error(key, source)))
                .collect()
        };
        let mut services_by_project = BTreeMap::new();
        for (project, names) in &self.services {
            let key = format!("services.{project}");
            services_by_project.insert(project.to_ascii_uppercase(), services(&key, names)?);
        }
        let conflict_groups = self
            .conflict_groups
            .iter()
            .map(|g| {
                let key = format!("conflict_groups.{}", g.name);
                Ok(ConflictGroup {
                    name: g.name.clone(),
                    services: services(&key, &g.services)?.into_iter().collect(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        // A pipeline's actor holds the roles its token names. The roles belong to the actor, so
        // two tokens of one actor that disagree about them are a mistake, said at start.
        for (i, a) in self.http.pipeline_tokens.iter().enumerate() {
            let same_roles = |b: &PipelineToken| {
                a.roles.contains(&PipelineRole::Admin) == b.roles.contains(&PipelineRole::Admin)
                    && a.roles.contains(&PipelineRole::Approver)
                        == b.roles.contains(&PipelineRole::Approver)
            };
            if let Some(b) = self.http.pipeline_tokens[i + 1..]
                .iter()
                .find(|b| b.actor == a.actor && !same_roles(b))
            {
                return Err(ConfigError::Pipeline(format!(
                    "two pipeline tokens act as {} with different roles ({:?} and {:?}): \
                     roles belong to the actor; give the tokens the same roles or different actors",
                    a.actor, a.roles, b.roles
                )));
            }
        }
        let pipelines = |role: PipelineRole| {
            self.http
                .pipeline_tokens
                .iter()
                .filter(move |p| p.roles.contains(&role))
                .map(|p| p.actor.clone())
        };
        let mut approvers = users(&self.roles.approvers);
        approvers.extend(pipelines(PipelineRole::Approver));
        let mut admins = users(&self.roles.admins);
        admins.extend(pipelines(PipelineRole::Admin));
        let with_pipelines = |entries: &[RoleEntry], role: PipelineRole| -> Vec<RoleEntry> {
            let mut all = entries.to_vec();
            for actor in pipelines(role) {
                let entry = RoleEntry::User(actor);
                if !all.contains(&entry) {
                    all.push(entry);
                }
            }
            all
        };
        let takeover_after = &self.locks.takeover_after;
        let takeover_after_secs = crate::domain::parse_duration(takeover_after)
            .ok()
            .and_then(|d| u64::try_from(d.num_seconds()).ok())
            .ok_or_else(|| {
                value_error(
                    "locks.takeover_after",
                    ParseValueError::Duration(takeover_after.clone()),
                )
            })?;
        Ok(Policy {
            approvers,
            admins,
            roles: crate::domain::policy::Roles {
                approvers: with_pipelines(&self.roles.approvers, PipelineRole::Approver),
                admins: with_pipelines(&self.roles.admins, PipelineRole::Admin),
            },
            user_groups: BTreeMap::new(),
            four_eyes: self.four_eyes,
            services_by_project,
            conflict_groups,
            checks: Policy::standard_checks(pattern, self.require_wiki_link),
            tracker: self.tracker.as_ref().map(TrackerConfig::rules),
            reminders: crate::reminders::settings(&self.slack)?,
            takeover_after_secs,
        })
    }
}

fn value_error(key: &str, source: ParseValueError) -> ConfigError {
    ConfigError::Value {
        key: key.to_string(),
        source,
    }
}

fn parse_bool(name: &'static str, value: String) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Bool { name, value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    /// The example in the repository, which is the config file of the README, as written.
    const ISSUE_EXAMPLE: &str = include_str!("../dobrobot.example.toml");

    #[test]
    fn notify_is_group_or_dm_and_nothing_else() {
        let notify = |value: &str| {
            toml::from_str::<Config>(&format!("[slack]\nnotify = \"{value}\"\n"))
                .map(|c| c.slack.notify)
        };
        assert_eq!(notify("group").unwrap(), Notify::Group);
        assert_eq!(notify("dm").unwrap(), Notify::Dm);
        assert!(notify("sms").is_err());
        assert_eq!(Config::default().slack.notify, Notify::Group);
    }

    #[test]
    fn the_documented_file_works_as_written() {
        let config: Config = toml::from_str(ISSUE_EXAMPLE).unwrap();
        let policy = config.policy().unwrap();
        assert!(policy.is_approver(&UserId::parse("U01APPROVER").unwrap()));
        assert!(policy.is_admin(&UserId::parse("oleg").unwrap()));
        assert_eq!(
            policy.services_by_project["PAY"],
            vec![ServiceName::parse("billing").unwrap()]
        );
        assert_eq!(policy.conflict_groups[0].services.len(), 2);
        assert_eq!(config.stream(), "dobrobot-ledger-prod");
    }

    #[test]
    fn environment_overrides_the_file() {
        let config: Config = toml::from_str(ISSUE_EXAMPLE).unwrap();
        let env = |name: &str| match name {
            "DOBROBOT_STORE" => Some("sqlite://other.db".to_string()),
            "DOBROBOT_FOUR_EYES" => Some("false".to_string()),
            "DOBROBOT_ADMINS" => Some("oleg, ivan".to_string()),
            _ => None,
        };
        let config = config.with_env(env).unwrap();
        assert_eq!(config.store, "sqlite://other.db");
        assert!(!config.four_eyes);
        let names =
            |entries: &[RoleEntry]| entries.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&config.roles.admins), ["oleg", "ivan"]);
        assert_eq!(names(&config.roles.approvers), ["alice", "U01APPROVER"]);
        let bad = Config::default().with_env(|n| (n == "DOBROBOT_ADMINS").then(|| "a b".into()));
        assert!(matches!(bad, Err(ConfigError::Value { .. })));
    }

    #[test]
    fn role_entries_are_parsed_as_the_file_is_read() {
        let config: Config = toml::from_str(
            "[roles]\napprovers = [\"S0APPROVERS\", \"alice\"]\n\
             [slack]\nbackup_approvers = [\"S0BACKUP\"]",
        )
        .unwrap();
        assert!(matches!(config.roles.approvers[0], RoleEntry::Group(_)));
        assert!(matches!(
            config.slack.backup_approvers[0],
            RoleEntry::Group(_)
        ));
        let policy = config.policy().unwrap();
        let approvers: Vec<&str> = policy.approvers.iter().map(|u| u.as_str()).collect();
        assert_eq!(
            approvers,
            ["alice"],
            "groups are resolved by Slack, not the policy"
        );
        assert!(toml::from_str::<Config>("[roles]\nadmins = [\"not a user\"]").is_err());
    }

    #[test]
    fn a_pipeline_token_acts_as_its_actor_with_its_roles() {
        let hash = "ab".repeat(32);
        let config: Config = toml::from_str(&format!(
            "[[http.pipeline_tokens]]\nhash = \"sha256:{hash}\"\nactor = \"ci-deployer\"\nroles = [\"admin\"]\n\
             [[http.pipeline_tokens]]\nhash = \"{hash}\"\nactor = \"ci-plain\"\n"
        ))
        .unwrap();
        let policy = config.policy().unwrap();
        assert!(policy.is_admin(&UserId::parse("ci-deployer").unwrap()));
        assert!(!policy.is_approver(&UserId::parse("ci-deployer").unwrap()));
        assert!(!policy.is_admin(&UserId::parse("ci-plain").unwrap()));
        let bad = |text: &str| toml::from_str::<Config>(text).is_err();
        assert!(bad(
            "[[http.pipeline_tokens]]\nhash = \"abc\"\nactor = \"ci\"\n"
        ));
        assert!(bad(&format!(
            "[[http.pipeline_tokens]]\nhash = \"{hash}\"\nactor = \"ci\"\nroles = [\"god\"]\n"
        )));
        assert!(bad(&format!(
            "[[http.pipeline_tokens]]\nhash = \"{hash}\"\nactor = \"not an id\"\n"
        )));
        let two = toml::from_str::<Config>(&format!(
            "[[http.pipeline_tokens]]\nhash = \"{hash}\"\nactor = \"ci\"\nroles = [\"admin\"]\n\
             [[http.pipeline_tokens]]\nhash = \"{hash}\"\nactor = \"ci\"\n"
        ))
        .unwrap();
        assert!(matches!(two.policy(), Err(ConfigError::Pipeline(_))));
    }

    #[test]
    fn sinks_take_their_secrets_from_the_environment_only() {
        let text = "[sinks]\nattempts = 3\n\
                    [sinks.grafana]\nurl = \"https://grafana.example.com\"\n\
                    [sinks.pagerduty]\n\
                    [[sinks.webhooks]]\nname = \"ops\"\nurl = \"https://hooks/x\"\n\
                    secret_env = \"OPS_SECRET\"\n";
        let config: Config = toml::from_str(text).unwrap();
        assert!(config.sinks.any());
        assert!(!Config::default().sinks.any());
        let pagerduty = config.sinks.pagerduty.clone().unwrap();
        assert_eq!(pagerduty.url, "https://events.pagerduty.com");
        assert_eq!(config.sinks.lease, "10s");
        let env = |name: &str| match name {
            "GRAFANA_TOKEN" => Some("glsa".to_string()),
            "PAGERDUTY_ROUTING_KEY" => Some("R0".to_string()),
            "OPS_SECRET" => Some("whsec".to_string()),
            _ => None,
        };
        let config = config.with_env(env).unwrap();
        assert_eq!(config.sinks.grafana.unwrap().token.as_deref(), Some("glsa"));
        assert_eq!(
            config.sinks.pagerduty.unwrap().routing_key.as_deref(),
            Some("R0")
        );
        assert_eq!(config.sinks.webhooks[0].secret.as_deref(), Some("whsec"));
        // A secret in the file is an unknown key, not a secret.
        assert!(toml::from_str::<Config>("[sinks.grafana]\nurl = \"u\"\ntoken = \"t\"").is_err());
    }

    #[test]
    fn the_tracker_block_of_the_example_works_uncommented() {
        let (_, block) = ISSUE_EXAMPLE
            .split_once("# [tracker]")
            .expect("the example documents [tracker]");
        let block: String = block
            .lines()
            .map(|line| line.trim_start_matches("# ").trim_start_matches('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let config: Config = toml::from_str(&format!("[tracker]{block}")).unwrap();
        let tracker = config.tracker.expect("a tracker");
        assert_eq!(tracker.deployment, JiraDeployment::Cloud);
        assert_eq!(tracker.on_unavailable, OnUnavailable::Refuse);
        let rules = tracker.rules();
        assert_eq!(rules.statuses, ["Ready for release"]);
        assert_eq!(rules.labels, ["release"]);
        assert!(rules.require_fix_version && rules.require_assignee);
        assert!(toml::from_str::<Config>("[tracker]\non_unavailable = \"maybe\"").is_err());
        assert!(toml::from_str::<Config>("[tracker]\nstatus = [\"Done\"]").is_err());
    }

    #[test]
    fn the_tracker_takes_its_credentials_from_the_environment_only() {
        let env = |name: &str| match name {
            "DOBROBOT_TRACKER_BASE_URL" => Some("https://example.atlassian.net".to_string()),
            "JIRA_EMAIL" => Some("bot@example.com".to_string()),
            "JIRA_API_TOKEN" => Some("secret-token".to_string()),
            _ => None,
        };
        let config = Config::default().with_env(env).unwrap();
        let tracker = config.tracker.expect("the base URL turns the tracker on");
        assert_eq!(tracker.base_url, "https://example.atlassian.net");
        assert_eq!(tracker.email.as_deref(), Some("bot@example.com"));
        assert_eq!(tracker.api_token, Some(Secret("secret-token".into())));
        assert!(!format!("{tracker:?}").contains("secret-token"));
        assert!(toml::from_str::<Config>("[tracker]\napi_token = \"x\"").is_err());
        // Without a tracker, the credentials turn nothing on.
        let none = Config::default()
            .with_env(|n| (n == "JIRA_TOKEN").then(|| "t".to_string()))
            .unwrap();
        assert_eq!(none.tracker, None);
        assert!(none.policy().unwrap().tracker.is_none());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(toml::from_str::<Config>("aprovers = []").is_err());
        let bad_pattern = Config {
            ticket_pattern: "([".into(),
            ..Config::default()
        };
        assert!(matches!(
            bad_pattern.policy(),
            Err(ConfigError::Pattern { .. })
        ));
        let bad_bool =
            Config::default().with_env(|n| (n == "DOBROBOT_FOUR_EYES").then(|| "maybe".into()));
        assert!(matches!(bad_bool, Err(ConfigError::Bool { .. })));
        let bad_takeover: Config = toml::from_str("[locks]\ntakeover_after = \"soon\"").unwrap();
        assert!(matches!(
            bad_takeover.policy(),
            Err(ConfigError::Value { key, .. }) if key == "locks.takeover_after"
        ));
    }

    #[test]
    fn a_takeover_waits_thirty_minutes_unless_configured() {
        assert_eq!(
            Config::default().policy().unwrap().takeover_after_secs,
            1800
        );
        let config: Config = toml::from_str("[locks]\ntakeover_after = \"2h\"").unwrap();
        assert_eq!(config.policy().unwrap().takeover_after_secs, 7200);
        let config: Config = toml::from_str("[locks]\ntakeover_after = \"0s\"").unwrap();
        assert_eq!(config.policy().unwrap().takeover_after_secs, 0);
        assert!(toml::from_str::<Config>("[locks]\nafter = \"1h\"").is_err());
    }
}
