//! `App::build`: the one place a process is assembled. It opens the store, loads the ledger's
//! writer, starts the one follower and the bot, and, for a serving process, the fronts: the
//! HTTP server, Slack (its front, the presenter that keeps release messages in step with the
//! ledger, Socket Mode) and the reminder scheduler. `dobrobot serve` and `dobrobot chat` call
//! it, and so do the tests (`tests/support`), with test settings only, so that what is tested
//! is what runs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::bot::Bot;
use crate::config::{Config, ConfigError};
use crate::domain::reminders::SettingsError;
use crate::domain::{Policy, PolicyCause, PolicyProposal};
use crate::follower::{Followed, Follower};
use crate::http::{self, SlackEndpoints};
use crate::ledger::{Ledger, LedgerError, Options};
use crate::models::{ModelsError, StoredModels};
use crate::reminders::{self, Scheduler};
use crate::render::Renderer;
use crate::sinks::{self, Deliveries, Delivery, Outbox, SinkError};
use crate::slack::api::SlackApi;
use crate::slack::directory::Directory;
use crate::slack::messages::ReleaseMessages;
use crate::slack::presenter::Presenter;
use crate::slack::reminder_sink::ThreadReplies;
use crate::slack::socket::{SocketMode, install_crypto_provider};
use crate::slack::{SlackError, SlackFront};
use crate::store::{self, EventStore, StoreError};

/// What differs between processes (and between production and tests); the rest is the config.
#[derive(Clone)]
pub struct Settings {
    /// The ledger writer's clock and limits.
    pub ledger: Options,
    /// Start the fronts (HTTP, Slack, reminders), as `serve` does; `chat` needs none.
    pub fronts: bool,
    /// How often the reminder scheduler looks.
    pub reminder_interval: Duration,
}

impl Settings {
    pub fn serve() -> Self {
        Settings {
            ledger: Options::default(),
            fronts: true,
            reminder_interval: reminders::INTERVAL,
        }
    }

    pub fn chat() -> Self {
        Settings {
            fronts: false,
            ..Settings::serve()
        }
    }
}

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Sinks(#[from] SinkError),
    #[error(transparent)]
    Models(#[from] ModelsError),
    #[error("starting the Slack front: {0}")]
    Slack(#[from] SlackError),
    #[error("[slack] reminder settings: {0}")]
    Reminders(#[from] SettingsError),
    #[error("SLACK_APP_TOKEN is set without SLACK_BOT_TOKEN")]
    AppTokenWithoutBotToken,
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Http(String),
    #[error("the HTTP server stopped: {0}")]
    Server(String),
    #[error("the ledger cannot be read: the follower stopped")]
    FollowerStopped,
}

/// A running process.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn EventStore>,
    pub stream: String,
    pub bot: Arc<Bot>,
    pub slack: Option<Arc<SlackFront>>,
    follower: Follower,
    tasks: Vec<JoinHandle<()>>,
    socket: Option<SocketMode>,
    /// The release markers' worker, stopped (and its lease given up) on stop.
    markers: Option<Markers>,
    server: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
}

impl App {
    pub async fn build(config: Config, settings: Settings) -> Result<App, AppError> {
        let policy = Arc::new(config.policy()?);
        // Before the store opens: a tracker without its credentials stops the start here.
        let tracker = config
            .tracker
            .as_ref()
            .map(crate::tracker::from_config)
            .transpose()?;
        let store = store::open(&config.store).await?;
        let stream = config.stream();
        let options = Options {
            snapshot_every: config.snapshot_every,
            ..settings.ledger.clone()
        };
        let ledger = Ledger::open(store.clone(), stream.clone(), policy, options).await?;
        // `serve` records its rules when they differ from the recorded ones; a one-off process
        // (`chat`, `deploy`) records them only into a ledger that has none, and otherwise
        // decides by the recorded ones: a `chat` run with another config (or none) must not
        // change the rules every replica decides by.
        match &ledger.snapshot().state.policy {
            Some(recorded) if !settings.fronts => {
                if **recorded != configured_policy(&ledger, &config)? {
                    warn!(
                        "this config's rules differ from the ones recorded in the ledger, which apply; \
                         serve records a config when it starts or on SIGHUP (dobrobot policy show)"
                    );
                }
            }
            _ => {
                adopt_config(&ledger, &config, PolicyCause::Start).await?;
            }
        }
        if settings.fronts {
            // Before the follower starts, so that its summary always comes after this line.
            let snapshot = ledger.snapshot();
            info!(
                store = %crate::store::esdb::redact(&config.store),
                %stream,
                revision = ?snapshot.revision,
                open_requests = snapshot.state.releases.len(),
                "dobrobot is serving the ledger"
            );
        }
        let stored = StoredModels::open(config.models_path())?;
        let follower = Follower::start(store.clone(), stream.clone(), stored, settings.fronts);
        let bot = Arc::new(Bot {
            ledger,
            followed: follower.followed().clone(),
            tracker,
        });
        let mut app = App {
            config,
            store,
            stream,
            bot,
            slack: None,
            follower,
            tasks: Vec::new(),
            socket: None,
            markers: None,
            server: None,
        };
        if settings.fronts {
            app.start_fronts(&settings).await?;
        }
        Ok(app)
    }

    async fn start_fronts(&mut self, settings: &Settings) -> Result<(), AppError> {
        let replica = replica_id();
        self.start_sinks(&replica).await?;
        let slack = self.config.slack.clone();
        if let Some(token) = &slack.bot_token {
            // One TLS provider for every client (Slack's Web API, Socket Mode's websocket).
            install_crypto_provider();
            let api = SlackApi::new(&slack.api_url, token)?;
            let directory = Arc::new(Directory::new(api.clone()));
            let messages = Arc::new(
                ReleaseMessages::open(self.store.clone(), &self.config.environment).await?,
            );
            let renderer = Renderer::slack(self.config.tracker_url.clone())
                .with_page(self.config.http.public_url.clone());
            let front = SlackFront::start(SlackFront {
                bot: self.bot.clone(),
                api: api.clone(),
                directory: directory.clone(),
                messages: messages.clone(),
                renderer: renderer.clone(),
            })
            .await;
            let presenter = Presenter {
                api: api.clone(),
                store: self.store.clone(),
                stream: self.stream.clone(),
                messages: messages.clone(),
                followed: self.followed().clone(),
                ledger: self.bot.ledger.clone(),
                directory,
                renderer: renderer.clone(),
                release_channel: slack.release_channel.clone(),
                delivery: slack.notify,
                replica: replica.clone(),
            };
            self.tasks.push(presenter.spawn());
            // Every replica runs the scheduler; the ledger lets only one record each reminder.
            let sink = ThreadReplies {
                api,
                messages,
                release_channel: slack.release_channel.clone(),
            };
            let scheduler = Scheduler::new(
                self.bot.ledger.clone(),
                reminders::settings(&slack)?,
                renderer,
                settings.ledger.clock.clone(),
                Arc::new(sink),
            );
            self.tasks.push(scheduler.spawn(settings.reminder_interval));
            self.slack = Some(front);
        }
        self.socket = match (&slack.app_token, &self.slack) {
            (Some(_), Some(front)) => Some(SocketMode::start(&slack, front.clone()).await?),
            (Some(_), None) => return Err(AppError::AppTokenWithoutBotToken),
            (None, _) => None,
        };
        let endpoints = slack
            .signing_secret
            .clone()
            .map(|signing_secret| SlackEndpoints {
                signing_secret,
                front: self.slack.clone(),
            });
        let slack_events = endpoints.is_some();
        let access =
            http::access::Access::from_config(&self.config.http).map_err(AppError::Http)?;
        let addr = self.config.http.addr.clone();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| AppError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| AppError::Bind { addr, source })?;
        let readiness = http::health::Readiness {
            store: self.store.clone(),
            stream: self.stream.clone(),
            followed: self.followed().clone(),
        };
        let api = http::api::ReadApi {
            followed: self.followed().clone(),
            ledger: self.bot.ledger.clone(),
            store: self.store.clone(),
            stream: self.stream.clone(),
            tracker_url: self.config.tracker_url.clone(),
        };
        let api_open = access.is_open();
        let commands = http::commands::Commands {
            bot: self.bot.clone(),
            access: access.clone(),
            renderer: Renderer::plain(self.config.tracker_url.clone())
                .with_page(self.config.http.public_url.clone()),
        };
        let pipelines = self.config.http.pipeline_tokens.len();
        let router = http::router(readiness, api, access, commands, endpoints);
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        info!(
            %addr,
            slack_events,
            slack_web_api = self.slack.is_some(),
            socket_mode = self.socket.is_some(),
            api_open,
            pipelines,
            "HTTP server listening"
        );
        self.server = Some((addr, server));
        Ok(())
    }

    /// The release markers (Grafana, PagerDuty, webhooks), when a sink is configured: a
    /// missing secret stops the start here rather than failing at the first deployment.
    async fn start_sinks(&mut self, replica: &str) -> Result<(), AppError> {
        let config = &self.config.sinks;
        if !config.any() {
            return Ok(());
        }
        let delivery = Delivery::from_config(config)?;
        let sinks = sinks::configured(config, &delivery, self.config.tracker_url.as_deref())?;
        let deliveries =
            Arc::new(Deliveries::open(self.store.clone(), &self.config.environment).await?);
        let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        info!(sinks = ?names, %replica, "release markers configured");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let outbox = Outbox {
            store: self.store.clone(),
            stream: self.stream.clone(),
            deliveries: deliveries.clone(),
            followed: self.followed().clone(),
            sinks,
            delivery,
            replica: replica.to_string(),
            origin: self.bot.ledger.snapshot().revision,
        };
        let task = outbox.spawn(stopped);
        self.markers = Some(Markers {
            deliveries,
            replica: replica.to_string(),
            stop,
            task,
        });
        Ok(())
    }

    /// The follower's read models.
    pub fn followed(&self) -> &Followed {
        self.follower.followed()
    }

    /// Where the HTTP server listens, when the fronts run.
    pub fn address(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|(addr, _)| *addr)
    }

    /// Runs until `stop` resolves (a signal), the HTTP server fails or the follower stops;
    /// then stops everything. A SIGHUP reads the config file again and records its policy
    /// (`reload`); an invalid file is refused and the policy in force stays.
    pub async fn run_until(
        mut self,
        stop: impl Future<Output = &'static str>,
    ) -> Result<(), AppError> {
        let followed = self.followed().clone();
        let follower_stopped = async move {
            let mut changes = followed.changes();
            let _ = changes.wait_for(|p| p.failed).await;
        };
        let (ledger, file) = (self.bot.ledger.clone(), self.config.file.clone());
        let server = async {
            match self.server.as_mut() {
                Some((_, server)) => match server.await {
                    Ok(Ok(())) => AppError::Server("it closed".to_string()),
                    Ok(Err(error)) => AppError::Server(error.to_string()),
                    Err(error) => AppError::Server(error.to_string()),
                },
                None => std::future::pending().await,
            }
        };
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let hangups = async {
            loop {
                match hangup.as_mut() {
                    Some(signal) => {
                        if signal.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
                let _ = reload(&ledger, file.as_ref()).await;
            }
        };
        let result = tokio::select! {
            signal = stop => {
                info!(signal, "stopping");
                Ok(())
            }
            error = server => Err(error),
            () = follower_stopped => Err(AppError::FollowerStopped),
            () = hangups => Ok(()),
        };
        self.stop().await;
        result
    }

    /// Closes Socket Mode (waiting for the commands it has received), then stops the rest:
    /// dropping the app aborts its tasks, the HTTP server and the follower.
    pub async fn stop(mut self) {
        if let Some(socket) = self.socket.take() {
            socket.shutdown().await;
        }
        // The markers' worker stops first (no renewal can follow), then gives its lease up, so
        // another replica delivers at once; a marker it was sending is sent again from its
        // checkpoint.
        if let Some(markers) = self.markers.take() {
            let _ = markers.stop.send(true);
            let mut task = markers.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
            let replica = markers.replica;
            match markers.deliveries.release(&replica).await {
                Ok(true) => info!(%replica, "release markers: lease given up"),
                Ok(false) => {}
                Err(error) => warn!(%error, "release markers: the lease could not be given up"),
            }
        }
    }
}

/// The running release markers' worker.
struct Markers {
    deliveries: Arc<Deliveries>,
    replica: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(markers) = &self.markers {
            markers.task.abort();
        }
        for task in &self.tasks {
            task.abort();
        }
        if let Some((_, server)) = &self.server {
            server.abort();
        }
    }
}

/// Records the rules `config` describes as the ledger's policy if they differ from the ones
/// recorded last, keeping the members the ledger last recorded for the user groups the config
/// names (the Slack directory lists them anew). Returns what changed, in words.
pub async fn adopt_config(
    ledger: &Ledger,
    config: &Config,
    cause: PolicyCause,
) -> Result<Vec<String>, AppError> {
    let proposal = PolicyProposal {
        policy: configured_policy(ledger, config)?,
        cause,
        config_hash: config.file.as_ref().map(|f| f.sha256.clone()),
        host: host_name(),
        process: std::process::id(),
    };
    adopted(ledger.adopt(proposal).await?)
}

/// The rules `config` describes, with the members the ledger last recorded for the user groups
/// it names.
fn configured_policy(ledger: &Ledger, config: &Config) -> Result<Policy, AppError> {
    let recorded = ledger.snapshot().state.policy.clone();
    let groups = recorded
        .as_ref()
        .map(|p| p.user_groups.clone())
        .unwrap_or_default();
    Ok(config.policy()?.with_members(&groups))
}

/// Records `policy` (the Slack directory's view of the user groups, say) if it differs.
pub async fn adopt_policy(
    ledger: &Ledger,
    policy: Policy,
    cause: PolicyCause,
) -> Result<Vec<String>, AppError> {
    let proposal = PolicyProposal {
        policy,
        cause,
        config_hash: None,
        host: host_name(),
        process: std::process::id(),
    };
    adopted(ledger.adopt(proposal).await?)
}

fn adopted(outcome: crate::ledger::Outcome) -> Result<Vec<String>, AppError> {
    use crate::domain::Event;
    use crate::ledger::Decision;
    let changes = match outcome.result {
        Decision::Accepted(events) => events
            .into_iter()
            .find_map(|event| match event {
                Event::PolicyChanged { changes, .. } => Some(changes),
                _ => None,
            })
            .unwrap_or_default(),
        Decision::Refused(_) | Decision::AlreadyRecorded => Vec::new(),
    };
    if !changes.is_empty() {
        info!(revision = outcome.revision, changes = ?changes, "policy recorded");
    }
    Ok(changes)
}

/// Reads the config file again and records its policy; an invalid file is refused (logged)
/// and the policy in force stays.
pub async fn reload(
    ledger: &Ledger,
    file: Option<&crate::config::ConfigFile>,
) -> Result<Vec<String>, AppError> {
    let Some(file) = file else {
        warn!("reload: this process read no config file; nothing to read again");
        return Ok(Vec::new());
    };
    let result = match Config::load(Some(&file.path)) {
        Ok(config) => adopt_config(ledger, &config, PolicyCause::Reload).await,
        Err(error) => Err(error.into()),
    };
    match &result {
        Ok(changes) if changes.is_empty() => {
            info!(path = %file.path.display(), "config reloaded: the policy is unchanged")
        }
        Ok(_) => info!(path = %file.path.display(), "config reloaded"),
        Err(error) => warn!(
            path = %file.path.display(),
            %error,
            "config reload refused: the policy in force stays"
        ),
    }
    result
}

/// The host name, for the recorded policy's provenance.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// This process, as its claims in the Slack stream name it: the host (when the environment
/// says) and the process id, and a random part so a restarted process is another replica.
fn replica_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_string());
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &random[24..])
}
