//! The command line: `serve`, `chat`, and the read-side commands incident responders use.
//! Parsing is clap's; each subcommand is a few lines that call the library.

mod migrate;
mod projections_cmd;
mod remote;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Parser, Subcommand};

use crate::answer::ReplyKind;
use crate::app::{App, Settings};
use crate::config::Config;
use crate::domain::{HistoryFilter, Policy, ServiceName, TicketKey, UserId, queue};
use crate::envelope::{Actor, Source};
use crate::models::StoredModels;
use crate::projections::{AsOf, Live};
use crate::read::report::{Per, ReportQuery};
use crate::read::{self, DeploymentFilter, OutcomeFilter, Replay};
use crate::render::Renderer;
use crate::store::{self, EventStore};

pub use crate::read::parse_time;
pub use crate::read::rows::Format;
use crate::read::rows::{write_pages, write_rows};

/// Rows read at a time by a listing the CLI writes out page by page.
const CLI_PAGE: usize = 1000;

#[derive(Debug, Parser)]
#[command(
    name = "dobrobot",
    version,
    about = "A release ledger with a chat front"
)]
pub struct Cli {
    /// Config file (TOML). Without one, dobrobot runs on its defaults.
    #[arg(long, global = true, env = "DOBROBOT_CONFIG")]
    config: Option<PathBuf>,
    /// Event store URL, overriding the config (e.g. sqlite://data/ledger.db).
    #[arg(long, global = true)]
    store: Option<String>,
    /// Ask a running `dobrobot serve` (its address, e.g. http://127.0.0.1:8080) the read
    /// questions instead of reading the ledger here.
    #[arg(long, global = true, env = "DOBROBOT_SERVER")]
    server: Option<String>,
    /// The read token for `--server`, when its API needs one.
    #[arg(
        long,
        global = true,
        env = "DOBROBOT_READ_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Log as JSON lines.
    #[arg(long, global = true, env = "DOBROBOT_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the service: follow the ledger, serve HTTP (`/health`, `/ready`, `/metrics`, the read
    /// API under `/api`, Slack's endpoints), and run the Slack front and reminders when Slack is
    /// configured.
    #[command(
        after_help = "Example:\n  DOBROBOT_HTTP_ADDR=127.0.0.1:8080 dobrobot serve\n  curl -s 127.0.0.1:8080/api/v1/queue"
    )]
    Serve,
    /// Run one command as USER and print the bot's reply; without TEXT, read commands line by line.
    #[command(
        after_help = "Example:\n  dobrobot chat --as alice \"accept PAY-1\"\n  dobrobot chat --as oleg \"dep takeover PAY-1 the pipeline crashed\"\n  dobrobot chat --as bob help   # every command"
    )]
    Chat {
        /// The user the command comes from (a Slack user id or a name from the config's roles).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// The command text, as typed after the bot's mention.
        text: Vec<String>,
        /// Print each reply as a JSON line (kind, text, revision).
        #[arg(long)]
        json: bool,
    },
    /// Run a deployment for a CI/CD job: wait until TICKET may start, record `dep start`, run the
    /// command (its output passed through), then record `dep finish` on exit 0 or `dep rollback`
    /// with the exit status otherwise, also when the job is cancelled (SIGTERM/SIGINT, passed on
    /// to the command). Exits with the command's status; 75 if it did not get to start (--no-wait
    /// or --wait ran out), 77 if the ledger refused it, 69 if the ledger could not be reached.
    #[command(
        after_help = "Examples:\n  dobrobot deploy --as ci-deployer PAY-1 --wait 30m -- ./deploy.sh billing\n  DOBROBOT_PIPELINE_TOKEN=... dobrobot --server https://dobrobot.example.com deploy PAY-1 -- make deploy"
    )]
    Deploy {
        /// The actor the commands are recorded as (as `chat --as`); with --server, the pipeline
        /// token's actor (checked when given).
        #[arg(long = "as", value_name = "ACTOR", value_parser = UserId::parse)]
        user: Option<UserId>,
        #[arg(value_parser = TicketKey::parse)]
        ticket: TicketKey,
        /// How long to wait for the ticket's turn (approval, an admin, a lock, a freeze).
        #[arg(long, default_value = "30m", value_parser = std_duration)]
        wait: std::time::Duration,
        /// Do not wait: fail at once (exit 75) unless the ticket may start now.
        #[arg(long)]
        no_wait: bool,
        /// How often a sign of life is recorded while the command runs (the locks are flagged
        /// stale when three are missed).
        #[arg(long, default_value = "2m", value_parser = std_duration)]
        heartbeat: std::time::Duration,
        /// How often the queue is asked while waiting.
        #[arg(long, default_value = "5s", value_parser = std_duration)]
        poll: std::time::Duration,
        /// After SIGTERM/SIGINT, how long the command may take to stop before it is killed (a
        /// second signal kills it at once). Keep it shorter than the CI's own kill window.
        #[arg(long, default_value = "5s", value_parser = std_duration)]
        grace: std::time::Duration,
        /// With --server: the pipeline token the commands are sent with.
        #[arg(long, env = "DOBROBOT_PIPELINE_TOKEN", hide_env_values = true)]
        pipeline_token: Option<String>,
        /// The command to run, after `--`.
        #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
    },
    /// The open requests, their place in line and what they wait for.
    #[command(after_help = "Example:\n  dobrobot queue --format json")]
    Queue(Listing),
    /// Held locks.
    #[command(after_help = "Example:\n  dobrobot locks --revision 120")]
    Locks(Listing),
    /// Every release request and how it ended.
    #[command(
        after_help = "Example:\n  dobrobot deployments --service billing --outcome rolled_back --since '30d ago'"
    )]
    Deployments {
        #[arg(long, value_parser = ServiceName::parse)]
        service: Option<ServiceName>,
        #[arg(long, value_parser = TicketKey::parse)]
        ticket: Option<TicketKey>,
        /// Anyone who took part: requester, approver, admin, who started or ended it.
        #[arg(long, value_parser = UserId::parse)]
        actor: Option<UserId>,
        /// open, finished, rolled_back, abandoned, cancelled or rejected.
        #[arg(long, value_parser = OutcomeFilter::parse)]
        outcome: Option<OutcomeFilter>,
        /// Something happened to it at or after this time.
        #[arg(long, value_parser = time_arg)]
        since: Option<DateTime<Utc>>,
        /// Requested at or before this time.
        #[arg(long, value_parser = time_arg)]
        until: Option<DateTime<Utc>>,
        #[command(flatten)]
        listing: Listing,
    },
    /// The audit history, filtered.
    #[command(after_help = "Example:\n  dobrobot history --ticket PAY-1 --format csv > pay-1.csv")]
    History {
        #[arg(long, value_parser = ServiceName::parse)]
        service: Option<ServiceName>,
        #[arg(long, value_parser = TicketKey::parse)]
        ticket: Option<TicketKey>,
        #[arg(long, value_parser = UserId::parse)]
        actor: Option<UserId>,
        /// Event type, e.g. DeploymentStarted.
        #[arg(long = "type", value_parser = event_type_arg)]
        event_type: Option<String>,
        #[arg(long, value_parser = time_arg)]
        since: Option<DateTime<Utc>>,
        #[arg(long, value_parser = time_arg)]
        until: Option<DateTime<Utc>>,
        #[command(flatten)]
        listing: Listing,
    },
    /// Who deployed a service, most recent first.
    #[command(after_help = "Example:\n  dobrobot who billing --since '7d ago'")]
    Who {
        #[arg(value_parser = ServiceName::parse)]
        service: ServiceName,
        #[arg(long, value_parser = time_arg)]
        since: Option<DateTime<Utc>>,
        #[command(flatten)]
        listing: Listing,
    },
    /// The queue and the locks as they were at a time.
    #[command(after_help = "Example:\n  dobrobot replay --at '2026-11-25 03:12'")]
    Replay {
        #[arg(long, value_parser = time_arg)]
        at: DateTime<Utc>,
        #[command(flatten)]
        listing: Listing,
    },
    /// Deployments on the services in the window before a time: what changed before it broke.
    #[command(
        after_help = "Example:\n  dobrobot suspects --at '2026-11-25 03:12' --window 2h --service billing"
    )]
    Suspects {
        #[arg(long, value_parser = time_arg)]
        at: DateTime<Utc>,
        #[arg(long, default_value = "2h", value_parser = crate::domain::parse_duration)]
        window: Duration,
        /// Limit to these services (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', value_parser = ServiceName::parse)]
        service: Vec<ServiceName>,
        #[command(flatten)]
        listing: Listing,
    },
    /// Delivery figures per service and per week (or day, or the whole range): deployments,
    /// rollbacks and the change-failure rate, lead time, the waits for approval, an admin and a
    /// lock, and time to restore, as medians and 90th percentiles in seconds.
    #[command(
        after_help = "Example:\n  dobrobot report --since 30d --service billing --format csv > billing.csv"
    )]
    Report {
        /// From this time (`30d` is 30 days ago).
        #[arg(long, default_value = "30d", value_parser = time_arg)]
        since: DateTime<Utc>,
        /// Up to this time (default now).
        #[arg(long, value_parser = time_arg)]
        until: Option<DateTime<Utc>>,
        /// Only this service; without it, every service and all of them together.
        #[arg(long, value_parser = ServiceName::parse)]
        service: Option<ServiceName>,
        /// Period: day, week (from Monday 00:00 UTC) or range (one row for the whole range).
        #[arg(long, default_value = "week", value_parser = Per::parse)]
        per: Per,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Check the ledger: contiguous revisions, intact hash chain, valid events.
    #[command(after_help = "Example:\n  dobrobot verify")]
    Verify,
    /// Copy the ledger between two stores (e.g. sqlite://... to esdb://...), keeping event ids,
    /// order, metadata and the hash chain; running it again appends nothing.
    #[command(
        after_help = "Example:\n  dobrobot migrate --from sqlite://data/ledger.db --to 'esdb://localhost:2113?tls=false'"
    )]
    Migrate {
        /// Source store URL.
        #[arg(long)]
        from: String,
        /// Target store URL.
        #[arg(long)]
        to: String,
    },
    /// The read models: rebuild the persisted ones, install EventStoreDB's server-side ones.
    #[command(subcommand)]
    Projections(ProjectionsCmd),
    /// The rules as the ledger recorded them: the policy in force at a time, or what changed
    /// between two times.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Replays the commands recorded in a range under a proposed config's rules and reports what
    /// would have differed: starts refused or moved, approvals that would not have counted,
    /// releases the new conflict groups keep apart. Writes nothing.
    #[command(
        name = "what-if",
        after_help = "Example:\n  dobrobot what-if --policy new.toml --since 90d\n  dobrobot what-if --policy new.toml --since 2026-09-01 --format csv > differences.csv"
    )]
    WhatIf {
        /// The proposed config file; its rules (roles, services, conflict groups, checks,
        /// reminders) are used, the rest of it is not.
        #[arg(long)]
        policy: PathBuf,
        /// From this time (`90d` is 90 days ago).
        #[arg(long, default_value = "90d", value_parser = time_arg)]
        since: DateTime<Utc>,
        /// Up to this time (default now).
        #[arg(long, value_parser = time_arg)]
        until: Option<DateTime<Utc>>,
        /// Output format; JSON is the typed differences.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCmd {
    /// The policy in force at a time (default now): roles with their user groups, services,
    /// conflict groups, ticket and tracker checks, reminders.
    #[command(
        after_help = "Example:\n  dobrobot policy show --at '2026-11-25 03:12'\n  dobrobot policy show --json | jq .admins"
    )]
    Show {
        /// The time (`2026-11-25T03:12Z`, `2026-11-25 03:12` in UTC, or `2h` ago).
        #[arg(long, value_parser = time_arg)]
        at: Option<DateTime<Utc>>,
        /// The policy as recorded (JSON, the `PolicyChanged` event's `policy`).
        #[arg(long)]
        json: bool,
    },
    /// What changed in the rules from one time to another, a change a line.
    #[command(after_help = "Example:\n  dobrobot policy diff 30d now")]
    Diff {
        /// From this time (`now` for now).
        #[arg(value_parser = time_or_now)]
        from: DateTime<Utc>,
        /// To this time (`now` for now).
        #[arg(value_parser = time_or_now)]
        to: DateTime<Utc>,
        /// `{"from", "to", "changes": [...]}`.
        #[arg(long)]
        json: bool,
    },
}

fn time_or_now(text: &str) -> Result<DateTime<Utc>, String> {
    if text.trim().eq_ignore_ascii_case("now") {
        return Ok(Utc::now());
    }
    time_arg(text)
}

#[derive(Debug, Subcommand)]
enum ProjectionsCmd {
    /// Create or update the server-side projections (projections/*.js) in EventStoreDB.
    #[command(
        after_help = "Example:\n  dobrobot --store 'esdb://localhost:2113?tls=false' projections install"
    )]
    Install,
    /// Throw the persisted read models away and fold them again from the ledger.
    #[command(after_help = "Example:\n  dobrobot projections rebuild")]
    Rebuild,
}

#[derive(Debug, Args)]
struct Listing {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Build as of this revision instead of the latest.
    #[arg(long)]
    revision: Option<u64>,
}

/// An event type as the ledger names it (any case).
fn event_type_arg(text: &str) -> Result<String, String> {
    crate::domain::Event::TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(text.trim()))
        .map(|t| t.to_string())
        .ok_or_else(|| format!("one of {}", crate::domain::Event::TYPES.join(", ")))
}

/// A duration argument (`30m`, `1h30m`, `90s`, `250ms`), more than zero.
fn std_duration(text: &str) -> Result<std::time::Duration, String> {
    let millis = text
        .trim()
        .strip_suffix("ms")
        .and_then(|n| n.parse().ok())
        .map(std::time::Duration::from_millis);
    millis
        .or_else(|| {
            crate::domain::parse_duration(text)
                .ok()
                .and_then(|d| d.to_std().ok())
        })
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration (30m, 1h30m, 90s, 250ms)"))
}

/// A time argument, relative forms counted from now.
fn time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time(text, Utc::now())
}

/// Runs the CLI; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.command {
        Cmd::Chat { .. } | Cmd::Deploy { .. } => "warn",
        _ => "info",
    };
    crate::telemetry::init(cli.log_format == "json", level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // The reader went away (`dobrobot history | head`): nothing more to say, to anyone.
        Err(error) if broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::from(3)
        }
    };
    // The command is done and has said so. What may still run is background work on caches (a
    // follower applying an event to the read models, a writer snapshot), which the next process
    // finishes; a transaction cut short is rolled back. Waiting for it would hold a `chat` that
    // has answered behind another process's lock.
    runtime.shutdown_background();
    code
}

/// Whether writing the output failed because its reader closed the pipe.
fn broken_pipe(error: &anyhow::Error) -> bool {
    let pipe = |kind: std::io::ErrorKind| kind == std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| pipe(e.kind()))
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                .is_some_and(pipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if pipe(io.kind())))
    })
}

/// The error and its causes, each said once: the library's errors already name their source in
/// their own message, so `{:#}` would print it twice.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

struct Context_ {
    config: Config,
    policy: Policy,
    store: Arc<dyn EventStore>,
    stream: String,
}

/// The config file (or defaults) with the environment's and `--store`'s overrides.
fn config(cli: &Cli) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(store) = &cli.store {
        config.store = store.clone();
    }
    Ok(config)
}

async fn context(cli: &Cli) -> Result<Context_> {
    let config = config(cli)?;
    let policy = config.policy()?;
    let store = store::open(&config.store)
        .await
        .with_context(|| format!("opening the store {}", config.store))?;
    let stream = config.stream();
    Ok(Context_ {
        config,
        policy,
        store,
        stream,
    })
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Cmd::Migrate { from, to } = &cli.command {
        let config = Config::load(cli.config.as_deref())?;
        return migrate::run(&config, from, to).await;
    }
    match &cli.command {
        Cmd::Serve => {
            serve(config(&cli)?).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Chat { user, text, json } => {
            return chat(config(&cli)?, user, &text.join(" "), *json).await;
        }
        Cmd::Deploy {
            user,
            ticket,
            wait,
            no_wait,
            heartbeat,
            poll,
            grace,
            pipeline_token,
            command,
        } => {
            let (program, args) = command.split_first().expect("clap requires a command");
            let plan = crate::deploy::Plan {
                ticket: ticket.clone(),
                wait: (!no_wait).then_some(*wait),
                heartbeat: *heartbeat,
                poll: *poll,
                grace: *grace,
                program: program.clone(),
                args: args.to_vec(),
            };
            let target = match &cli.server {
                Some(url) => DeployTo::Server {
                    url,
                    token: pipeline_token.clone(),
                },
                None => DeployTo::Here,
            };
            return deploy(config(&cli)?, user.clone(), target, &plan).await;
        }
        _ => {}
    }
    if let Some(url) = &cli.server
        && let Some(code) = remote(url, cli.token.clone(), &cli.command).await?
    {
        return Ok(code);
    }
    let ctx = context(&cli).await?;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Cmd::Serve | Cmd::Chat { .. } | Cmd::Deploy { .. } => {
            unreachable!("handled before the store is opened")
        }
        Cmd::Queue(listing) => {
            let live = build_live(&ctx, as_of(&listing)).await?;
            write_rows(&mut out, listing.format, &queue(&live.state, &ctx.policy))?;
        }
        Cmd::Locks(listing) => {
            let live = build_live(&ctx, as_of(&listing)).await?;
            write_rows(&mut out, listing.format, &live.locks())?;
        }
        Cmd::Deployments {
            service,
            ticket,
            actor,
            outcome,
            since,
            until,
            listing,
        } => {
            let filter = DeploymentFilter {
                service,
                ticket,
                actor,
                outcome,
                since,
                until,
            };
            let models = stored(&ctx).await?;
            let upto = listing.revision;
            write_pages(&mut out, listing.format, |after| {
                Ok(models.read(|r| r.values(r.deployments(&filter, after, upto, CLI_PAGE)?))?)
            })?;
        }
        Cmd::History {
            service,
            ticket,
            actor,
            event_type,
            since,
            until,
            listing,
        } => {
            let filter = HistoryFilter {
                service,
                ticket,
                actor,
                event_type,
                since,
                until,
            };
            let models = stored(&ctx).await?;
            let upto = listing.revision;
            write_pages(&mut out, listing.format, |after| {
                Ok(models.read(|r| r.history(&filter, after, upto, CLI_PAGE))?)
            })?;
        }
        Cmd::Who {
            service,
            since,
            listing,
        } => {
            let filter = DeploymentFilter {
                since,
                ..DeploymentFilter::default()
            };
            let models = stored(&ctx).await?;
            let upto = listing.revision;
            write_pages(&mut out, listing.format, |before| {
                Ok(models.read(|r| r.values(r.who(&service, &filter, before, upto, CLI_PAGE)?))?)
            })?;
        }
        Cmd::WhatIf {
            policy,
            since,
            until,
            format,
        } => {
            let proposed = Config::from_file(&policy)?.policy()?;
            // The user groups' members as recorded now: a config names groups, not people.
            let now = build_live(&ctx, AsOf::Latest).await?;
            let groups = now
                .state
                .policy
                .as_ref()
                .map(|p| p.user_groups.clone())
                .unwrap_or_default();
            let proposed = proposed.with_members(&groups);
            let answer =
                crate::replay::what_if(&ctx.store, &ctx.stream, &proposed, since, until).await?;
            if format == Format::Json {
                serde_json::to_writer_pretty(&mut out, &answer)?;
                writeln!(out)?;
            } else {
                let renderer = Renderer::plain(ctx.config.tracker_url.clone());
                let rows = crate::render::whatif::rows(&answer.differences, &renderer);
                if format == Format::Table {
                    writeln!(
                        out,
                        "{} recorded commands from {} decided again under {}: {}",
                        answer.commands,
                        since.to_rfc3339(),
                        policy.display(),
                        match rows.len() {
                            0 => "no difference".to_string(),
                            1 => "1 difference".to_string(),
                            n => format!("{n} differences"),
                        }
                    )?;
                }
                if !rows.is_empty() || format == Format::Csv {
                    write_rows(&mut out, format, &rows)?;
                }
            }
        }
        Cmd::Policy(PolicyCmd::Show { at, json }) => {
            let live = build_live(&ctx, at.map_or(AsOf::Latest, AsOf::Time)).await?;
            let Some(policy) = &live.state.policy else {
                let when = at.map_or("yet".to_string(), |t| format!("by {}", t.to_rfc3339()));
                eprintln!(
                    "error: the ledger records no policy {when} (a process records its policy when it starts)"
                );
                return Ok(ExitCode::from(1));
            };
            if json {
                serde_json::to_writer_pretty(&mut out, &**policy)?;
                writeln!(out)?;
            } else {
                let revision = live.revision.map_or("none".to_string(), |r| r.to_string());
                let when = at.map_or("now".to_string(), |t| t.to_rfc3339());
                writeln!(out, "Policy in force {when} (ledger revision {revision})")?;
                write!(out, "{}", crate::render::policy::plain(policy))?;
            }
        }
        Cmd::Policy(PolicyCmd::Diff { from, to, json }) => {
            let before = build_live(&ctx, AsOf::Time(from)).await?;
            let after = build_live(&ctx, AsOf::Time(to)).await?;
            let changes = match (&before.state.policy, &after.state.policy) {
                (_, None) => {
                    eprintln!("error: the ledger records no policy by {}", to.to_rfc3339());
                    return Ok(ExitCode::from(1));
                }
                (None, Some(after)) => crate::domain::policy::changes(None, after),
                (Some(before), Some(after)) => crate::domain::policy::changes(Some(before), after),
            };
            if json {
                let value = serde_json::json!({
                    "from": from, "to": to, "changes": changes,
                });
                serde_json::to_writer_pretty(&mut out, &value)?;
                writeln!(out)?;
            } else if changes.is_empty() {
                writeln!(
                    out,
                    "No change in the rules from {} to {}.",
                    from.to_rfc3339(),
                    to.to_rfc3339()
                )?;
            } else {
                for change in &changes {
                    writeln!(out, "{change}")?;
                }
            }
        }
        Cmd::Replay { at, listing } => {
            if let Some(code) = no_revision(&listing, "replay") {
                return Ok(code);
            }
            let live = build_live(&ctx, AsOf::Time(at)).await?;
            replay(&mut out, listing.format, at, &live, &ctx.policy)?;
        }
        Cmd::Suspects {
            at,
            window,
            service,
            listing,
        } => {
            if let Some(code) = no_revision(&listing, "suspects") {
                return Ok(code);
            }
            let models = stored(&ctx).await?;
            let rows = models.read(|r| r.suspects(at, window, &service, None, usize::MAX))?;
            write_rows(&mut out, listing.format, &rows.items)?;
        }
        Cmd::Report {
            since,
            until,
            service,
            per,
            format,
        } => {
            let query = ReportQuery::new(since, until.unwrap_or_else(Utc::now), service, per);
            if let Err(problem) = query.check() {
                eprintln!("error: {problem}");
                return Ok(ExitCode::from(2));
            }
            let models = stored(&ctx).await?;
            let rows = models.read(|r| r.report(&query))?;
            write_rows(&mut out, format, &rows)?;
        }
        Cmd::Migrate { .. } => unreachable!("handled before the store is opened"),
        Cmd::Projections(ProjectionsCmd::Install) => {
            drop(out);
            return projections_cmd::install(&ctx.config, &ctx.store).await;
        }
        Cmd::Projections(ProjectionsCmd::Rebuild) => {
            let path = ctx.config.models_path();
            let models = StoredModels::open(&path)?;
            models.clear()?;
            let caught_up = models.catch_up(&ctx.store, &ctx.stream).await?;
            writeln!(
                out,
                "rebuilt the read models in {} from {} events of {}",
                path.display(),
                caught_up.applied,
                ctx.stream
            )?;
        }
        Cmd::Verify => {
            let report = match crate::verify::verify(&ctx.store, &ctx.stream).await {
                Ok(report) => report,
                Err(crate::verify::VerifyError::Bad(bad)) => {
                    writeln!(out, "FAILED: {bad}")?;
                    return Ok(ExitCode::from(1));
                }
                Err(bad @ crate::verify::VerifyError::BadSnapshot { .. }) => {
                    writeln!(out, "FAILED: {bad}")?;
                    return Ok(ExitCode::from(1));
                }
                Err(error) => return Err(error.into()),
            };
            writeln!(
                out,
                "ok: {} events in {}, hash chain intact, every event valid, {} snapshots equal the fold; last hash {}",
                report.events, ctx.stream, report.snapshots, report.last_hash
            )?;
            // Every decision again, by the policy recorded then: the ledger is its own oracle.
            let (decided, mismatches) = crate::replay::check(&ctx.store, &ctx.stream).await?;
            if let Some(first) = mismatches.first() {
                writeln!(
                    out,
                    "FAILED: {} of {decided} commands decided again by the policy recorded then give other events; the first, at revision {}: recorded {}, decided again {}",
                    mismatches.len(),
                    first.revision,
                    serde_json::to_string(&first.recorded)?,
                    serde_json::to_string(&first.replayed)?
                )?;
                return Ok(ExitCode::from(1));
            }
            writeln!(
                out,
                "ok: {decided} commands decided again by the policy recorded then give the events recorded"
            )?;
            // The persisted read models, when this machine keeps them.
            let path = ctx.config.models_path();
            if path.exists() {
                let models = StoredModels::open(&path)?;
                use crate::verify::ModelsVerifyError as Bad;
                match crate::verify::verify_models(&ctx.store, &ctx.stream, &models).await {
                    Ok(models) => writeln!(
                        out,
                        "ok: the read models in {} equal a fresh fold{}",
                        path.display(),
                        models
                            .revision
                            .map_or(String::new(), |r| format!(" at revision {r}"))
                    )?,
                    Err(bad @ (Bad::Checkpoint { .. } | Bad::Differs { .. })) => {
                        writeln!(out, "FAILED: {bad}")?;
                        return Ok(ExitCode::from(1));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `replay` and `suspects` are as of `--at`: a `--revision` would be ignored, so it is refused
/// as a usage error (exit 2, as clap's own).
fn no_revision(listing: &Listing, command: &str) -> Option<ExitCode> {
    listing.revision.map(|_| {
        eprintln!("error: {command} is as of --at (a time); --revision does not apply");
        ExitCode::from(2)
    })
}

/// A read command asked of a running `serve`; `None` for the commands that are not questions
/// (they run here).
async fn remote(url: &str, token: Option<String>, command: &Cmd) -> Result<Option<ExitCode>> {
    let server = remote::Server::new(url, token)?;
    let mut out = std::io::stdout().lock();
    let time = |t: &DateTime<Utc>| t.to_rfc3339();
    let at = |listing: &Listing| -> Vec<(&'static str, String)> {
        listing
            .revision
            .map(|r| ("at", r.to_string()))
            .into_iter()
            .collect()
    };
    match command {
        Cmd::Queue(listing) => {
            server
                .listing(&mut out, listing.format, "/api/v1/queue", &at(listing))
                .await?
        }
        Cmd::Locks(listing) => {
            server
                .listing(&mut out, listing.format, "/api/v1/locks", &at(listing))
                .await?
        }
        Cmd::Deployments {
            service,
            ticket,
            actor,
            outcome,
            since,
            until,
            listing,
        } => {
            let mut query = at(listing);
            query.extend(given([
                ("service", service.as_ref().map(ToString::to_string)),
                ("ticket", ticket.as_ref().map(ToString::to_string)),
                ("actor", actor.as_ref().map(ToString::to_string)),
                ("outcome", outcome.map(|o| o.name().to_string())),
                ("since", since.as_ref().map(time)),
                ("until", until.as_ref().map(time)),
            ]));
            server
                .listing(&mut out, listing.format, "/api/v1/deployments", &query)
                .await?
        }
        Cmd::History {
            service,
            ticket,
            actor,
            event_type,
            since,
            until,
            listing,
        } => {
            let mut query = at(listing);
            query.extend(given([
                ("service", service.as_ref().map(ToString::to_string)),
                ("ticket", ticket.as_ref().map(ToString::to_string)),
                ("actor", actor.as_ref().map(ToString::to_string)),
                ("type", event_type.clone()),
                ("since", since.as_ref().map(time)),
                ("until", until.as_ref().map(time)),
            ]));
            server
                .listing(&mut out, listing.format, "/api/v1/history", &query)
                .await?
        }
        Cmd::Who {
            service,
            since,
            listing,
        } => {
            let mut query = at(listing);
            query.extend(since.as_ref().map(|t| ("since", time(t))));
            let path = format!("/api/v1/who/{service}");
            server
                .listing(&mut out, listing.format, &path, &query)
                .await?
        }
        Cmd::Replay { at: when, listing } => {
            if let Some(code) = no_revision(listing, "replay") {
                return Ok(Some(code));
            }
            server.replay(&mut out, listing.format, time(when)).await?
        }
        Cmd::Suspects {
            at: when,
            window,
            service,
            listing,
        } => {
            if let Some(code) = no_revision(listing, "suspects") {
                return Ok(Some(code));
            }
            let mut query = vec![
                ("at", time(when)),
                ("window", format!("{}s", window.num_seconds())),
            ];
            query.extend(service.iter().map(|s| ("service", s.to_string())));
            server
                .listing(&mut out, listing.format, "/api/v1/suspects", &query)
                .await?
        }
        Cmd::Report {
            since,
            until,
            service,
            per,
            format,
        } => {
            let mut query = vec![("since", time(since)), ("per", per.name().to_string())];
            query.extend(given([
                ("until", until.as_ref().map(time)),
                ("service", service.as_ref().map(ToString::to_string)),
            ]));
            server
                .listing(&mut out, *format, "/api/v1/report", &query)
                .await?
        }
        Cmd::Verify => return Ok(Some(server.verify(&mut out).await?)),
        Cmd::Policy(_) | Cmd::WhatIf { .. } => {
            eprintln!(
                "error: `policy` and `what-if` read the store themselves; run them without --server"
            );
            return Ok(Some(ExitCode::from(2)));
        }
        Cmd::Serve
        | Cmd::Chat { .. }
        | Cmd::Deploy { .. }
        | Cmd::Migrate { .. }
        | Cmd::Projections(_) => {
            return Ok(None);
        }
    }
    Ok(Some(ExitCode::SUCCESS))
}

/// The parameters that were given, in order.
fn given<const N: usize>(
    parameters: [(&'static str, Option<String>); N],
) -> impl Iterator<Item = (&'static str, String)> {
    parameters
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
}

fn as_of(listing: &Listing) -> AsOf {
    listing.revision.map_or(AsOf::Latest, AsOf::Revision)
}

async fn build_live(ctx: &Context_, as_of: AsOf) -> Result<Live> {
    Ok(read::live_as_of(&ctx.store, &ctx.stream, as_of).await?)
}

/// The persisted read models, caught up with the ledger.
async fn stored(ctx: &Context_) -> Result<Arc<StoredModels>> {
    let models = StoredModels::open(ctx.config.models_path())?;
    models.catch_up(&ctx.store, &ctx.stream).await?;
    Ok(models)
}

fn replay(
    out: &mut dyn Write,
    format: Format,
    at: DateTime<Utc>,
    live: &Live,
    policy: &Policy,
) -> Result<()> {
    let replay = Replay::of(live, at, policy);
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, &replay)?;
        writeln!(out)?;
        return Ok(());
    }
    let revision = replay
        .revision
        .map_or("none".to_string(), |r| r.to_string());
    writeln!(
        out,
        "As of {} (ledger revision {revision})",
        at.to_rfc3339()
    )?;
    if let (Some(by), Some(reason)) = (&replay.freeze.by, &replay.freeze.reason) {
        writeln!(out, "Frozen by {by}: {reason}")?;
    }
    writeln!(out, "Queue:")?;
    write_rows(out, format, &replay.queue)?;
    writeln!(out, "Locks:")?;
    write_rows(out, format, &replay.locks)
}

async fn chat(config: Config, user: &str, text: &str, json: bool) -> Result<ExitCode> {
    let user = UserId::parse(user)?;
    let renderer =
        Renderer::plain(config.tracker_url.clone()).with_page(config.http.public_url.clone());
    let app = App::build(config, Settings::chat()).await?;
    let actor = Actor {
        name: user.to_string(),
        id: user,
        source: Source::Cli,
    };
    let print = |kind: ReplyKind, text: &str| -> Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            let kind = format!("{kind:?}").to_lowercase();
            let line = serde_json::json!({ "kind": kind, "text": text });
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{text}")?;
        }
        out.flush()?;
        Ok(())
    };
    if !text.trim().is_empty() {
        let answer = app.bot.handle(actor, text, None).await;
        print(answer.kind(), &renderer.answer(&answer))?;
        app.stop().await;
        return Ok(match answer.kind() {
            ReplyKind::Done => ExitCode::SUCCESS,
            ReplyKind::Refused => ExitCode::from(1),
            ReplyKind::Invalid => ExitCode::from(2),
            ReplyKind::Failed => ExitCode::from(3),
        });
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = app.bot.handle(actor.clone(), &line, None).await;
        print(answer.kind(), &renderer.answer(&answer))?;
    }
    app.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Where `deploy` records its commands.
enum DeployTo<'a> {
    /// The ledger this process opens.
    Here,
    /// A running `serve`, through the write API.
    Server { url: &'a str, token: Option<String> },
}

async fn deploy(
    config: Config,
    user: Option<UserId>,
    target: DeployTo<'_>,
    plan: &crate::deploy::Plan,
) -> Result<ExitCode> {
    let renderer =
        Renderer::plain(config.tracker_url.clone()).with_page(config.http.public_url.clone());
    // Never a panic for a closed stderr: the deployment goes on and is recorded.
    let say = |line: &str| {
        let _ = writeln!(std::io::stderr(), "dobrobot: {line}");
    };
    let code = match target {
        DeployTo::Server { url, token } => {
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                eprintln!(
                    "error: deploy --server needs a pipeline token (--pipeline-token or DOBROBOT_PIPELINE_TOKEN)"
                );
                return Ok(ExitCode::from(2));
            };
            let desk =
                crate::deploy::Remote::new(url, token, user, std::time::Duration::from_secs(30))?;
            crate::deploy::run(&desk, plan, &renderer, &say).await
        }
        DeployTo::Here => {
            let Some(user) = user else {
                eprintln!("error: deploy needs --as ACTOR (or --server with a pipeline token)");
                return Ok(ExitCode::from(2));
            };
            let app = App::build(config, Settings::chat()).await?;
            let desk = crate::deploy::Local {
                bot: app.bot.clone(),
                actor: Actor {
                    name: user.to_string(),
                    id: user,
                    source: Source::Cli,
                },
                renderer: renderer.clone(),
            };
            let code = crate::deploy::run(&desk, plan, &renderer, &say).await;
            app.stop().await;
            code
        }
    };
    Ok(ExitCode::from(code))
}

async fn serve(config: Config) -> Result<()> {
    let mut shutdown = Shutdown::listen();
    let app = App::build(config, Settings::serve()).await?;
    app.run_until(shutdown.wait()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM (what `docker stop` and service managers send), listened for from the
/// moment it is made: a signal during start-up is not lost, nor fatal.
struct Shutdown {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Shutdown {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn wait(&mut self) -> &'static str {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = next(&mut self.interrupt) => "interrupt",
            _ = next(&mut self.terminate) => "terminate",
        }
    }
}
