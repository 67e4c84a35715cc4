//! The two hot paths of dobrobot, each against a baseline measured in the same run:
//!
//! - (a) rebuilding every projection (`Live`, `Deployments`, `History` with a filter that keeps
//!   everything) from a generated ledger of `DOBROBOT_BENCH_EVENTS` events (default 1,000,000) in
//!   SQLite, versus reading the same rows through the store and decoding data and metadata into
//!   `serde_json::Value`. Target: ours / baseline >= 0.5.
//! - (b) commands/s through `Ledger::submit` into SQLite (WAL, synchronous=FULL) from many
//!   concurrent submitters, versus one INSERT + COMMIT (one fsync) per command with rusqlite on a
//!   separate file with the same pragmas and rows of the same size. Target: >= 4x.
//!
//! The ledger of (a) is written fast but through the domain: a simulation picks what people would
//! type next (request, accept, admin joins, start, finish; some rejections, cancellations,
//! rollbacks, freezes and mistakes), `domain::parse` and `domain::decide` turn it into events or a
//! refusal, `envelope::seal` chains them, and batches of 10,000 go to the store in one append.
//!
//! Then (c) the CLI on a ledger 100 times smaller and on this one, `serve`'s start-up, (d) the
//! read API under load, (e) `chat` processes beside it, and (f) the timeline page's first paint
//! of 24 hours in headless Chromium (when `DOBROBOT_PYTHON` has Playwright and Chromium is
//! installed).
//!
//! Run with `cargo bench --bench ledger`; the markdown it prints is pasted into BENCHMARKS.md.
//! Other knobs: `DOBROBOT_BENCH_COMMANDS` (default 20,000), `DOBROBOT_BENCH_SUBMITTERS` (64),
//! `DOBROBOT_BENCH_REPEAT` (3; the best run of each measurement is reported).

use std::collections::HashSet;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt;
use regex::Regex;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::mpsc;
use uuid::Uuid;

use dobrobot::domain::policy::DEFAULT_TICKET_PATTERN;
use dobrobot::domain::state::{AdminPresence, Stage};
use dobrobot::domain::{
    Command, ConflictGroup, Event, GroupName, HistoryFilter, Input, Policy, ServiceName, State,
    TicketKey, UserId, decide, parse, refused, start_blockers,
};
use dobrobot::envelope::{self, Actor, Context, GENESIS_HASH, Source};
use dobrobot::ledger::{self, Decision, Ledger, Options, Submission};
use dobrobot::projections::{self, AsOf, Deployments, History, Live, Projection};
use dobrobot::snapshots::{self, WriterSnapshot};
use dobrobot::store::{self, EventStore, ExpectedRevision, NewEvent, RecordedEvent};

/// Events per append while the ledger of (a) is written.
const APPEND_BATCH: usize = 10_000;
const SEED: u64 = 0x00d0_b40b_07be_4c4a;

struct Settings {
    events: u64,
    commands: u64,
    submitters: u64,
    repeat: u32,
}

fn main() -> anyhow::Result<()> {
    let settings = Settings {
        events: env_number("DOBROBOT_BENCH_EVENTS", 1_000_000)?,
        commands: env_number("DOBROBOT_BENCH_COMMANDS", 20_000)?,
        submitters: env_number("DOBROBOT_BENCH_SUBMITTERS", 64)?,
        repeat: u32::try_from(env_number("DOBROBOT_BENCH_REPEAT", 3)?)?.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&settings))
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    if let Some(ledger) = std::env::var_os("DOBROBOT_BENCH_LOAD_ON") {
        return load_only(Path::new(&ledger)).await;
    }
    let dir = tempfile::tempdir()?;
    let machine = Machine::detect();
    machine.print();

    eprintln!("(a) generating {} events ...", group(settings.events));
    let ledger_file = dir.path().join("rebuild.sqlite");
    let generated = generate(&ledger_file, settings.events).await?;
    generated.print();
    let rebuild = measure_rebuild(&generated.store, settings.repeat).await?;

    eprintln!(
        "(b) {} commands from {} submitters ...",
        group(settings.commands),
        settings.submitters
    );
    let throughput = measure_throughput(dir.path(), settings).await?;

    let small_events = (settings.events / 100).max(1000);
    eprintln!(
        "(c) the CLI on {} and on {} events ...",
        group(small_events),
        group(settings.events)
    );
    let small_file = dir.path().join("small.sqlite");
    let small = generate(&small_file, small_events).await?;
    let (scale, startup, load) = measure_scale(
        dir.path(),
        [
            (&small_file, &small.store),
            (&ledger_file, &generated.store),
        ],
        settings.repeat,
    )
    .await?;

    println!();
    println!("## Results ({})", machine.summary());
    println!();
    print_results(settings, &rebuild, &throughput);
    print_scale(small_events, settings.events, &scale);
    print_startup(small_events, settings.events, &startup);
    print_load(settings.events, &load);
    // `DOBROBOT_BENCH_KEEP=1` leaves the generated ledgers behind, to look into.
    if std::env::var_os("DOBROBOT_BENCH_KEEP").is_some() {
        eprintln!("the ledgers stay in {}", dir.keep().display());
    }
    Ok(())
}

/// Only (d) and (e), on a ledger kept by an earlier run (`DOBROBOT_BENCH_KEEP=1`), named by
/// `DOBROBOT_BENCH_LOAD_ON`: for trying a change to the paths under load without generating
/// and rebuilding a million events first. The `chat` commands of (e) are added to that ledger.
async fn load_only(ledger: &Path) -> anyhow::Result<()> {
    ensure!(ledger.is_file(), "{}: no such ledger", ledger.display());
    let dir = tempfile::tempdir()?;
    let store = store::open(&format!("sqlite://{}", ledger.display())).await?;
    let config = dir.path().join("load.toml");
    std::fs::write(
        &config,
        format!(
            "environment = \"bench\"\nstore = \"sqlite://{}\"\n",
            ledger.display()
        ),
    )?;
    let events = store
        .read(
            &bench_stream(),
            store::Direction::Backwards,
            store::ReadFrom::End,
            1,
        )
        .await?
        .first()
        .map_or(0, |e| e.revision + 1);
    let started = Instant::now();
    let (_serve, server) = Serving::start(&config)?;
    let client = reqwest::Client::new();
    while client
        .get(format!("{server}/ready"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "serve was not ready within ten minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let load = measure_load(&store, &server, &config).await?;
    print_load(events, &load);
    if let Some((paint, bars)) = first_paint(&store, &server, 3).await? {
        println!();
        println!(
            "(f) the timeline's first paint of the history's last 24 hours: {:.0} ms ({bars} bars)",
            ms(paint)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (c) The CLI on a ledger 100 times larger

/// One CLI question, timed (process start included, best of the rounds) on the small ledger and
/// on the large one.
struct Scaled {
    what: String,
    small: Duration,
    large: Duration,
    /// Asked of a running `serve` on each ledger (`--server`), for the read questions.
    server: Option<(Duration, Duration)>,
}

/// A `serve` on a ledger, stopped when dropped.
struct Serving(std::process::Child);

impl Serving {
    /// `dobrobot serve` with `config` on a free port, and its address.
    fn start(config: &Path) -> anyhow::Result<(Serving, String)> {
        let port = free_port()?;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("DOBROBOT_CONFIG")
            .env("DOBROBOT_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        Ok((Serving(child), format!("http://127.0.0.1:{port}")))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What the questions are about, on a ledger: its last request's ticket and first service, an
/// hour before its last event, and a week before it (RFC 3339).
struct Subjects {
    ticket: TicketKey,
    service: ServiceName,
    at: String,
    week: String,
    /// The simulated history's last event.
    end: DateTime<Utc>,
}

async fn subjects(store: &Arc<dyn EventStore>) -> anyhow::Result<Subjects> {
    let stream = bench_stream();
    // The simulation's events (from Slack), not the commands the bench itself adds from the
    // CLI at today's time: the questions are about the generated history.
    let recent = store
        .read(
            &stream,
            store::Direction::Backwards,
            store::ReadFrom::End,
            5000,
        )
        .await?;
    let mut simulated = Vec::new();
    for raw in &recent {
        let decoded = envelope::decode(raw)?;
        if decoded.metadata.actor.source == Source::Slack {
            simulated.push(decoded);
        }
    }
    let last = simulated.first().context("no simulated event at the end")?;
    let end = last.metadata.recorded_at;
    let (ticket, service) = simulated
        .iter()
        .find_map(|decoded| match &decoded.event {
            Event::ReleaseRequested {
                ticket, services, ..
            } => Some((ticket.clone(), services[0].clone())),
            _ => None,
        })
        .context("no request among the last events")?;
    Ok(Subjects {
        ticket,
        service,
        at: (end - TimeDelta::hours(1)).to_rfc3339(),
        week: (end - TimeDelta::days(7)).to_rfc3339(),
        end,
    })
}

/// The arguments of each question, for a ledger: about its last request, an hour before its
/// last event.
async fn questions(store: &Arc<dyn EventStore>) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let Subjects {
        ticket,
        service,
        at,
        week,
        ..
    } = subjects(store).await?;
    let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    Ok(vec![
        (
            "`history --ticket T`".into(),
            owned(&["history", "--ticket", ticket.as_str(), "--format", "json"]),
        ),
        (
            "`who S --since <7 days before the end>`".into(),
            owned(&[
                "who",
                service.as_str(),
                "--since",
                &week,
                "--format",
                "json",
            ]),
        ),
        (
            "`suspects --at T --window 2h`".into(),
            owned(&[
                "suspects", "--at", &at, "--window", "2h", "--format", "json",
            ]),
        ),
        ("`queue`".into(), owned(&["queue", "--format", "json"])),
        (
            "`replay --at T`".into(),
            owned(&["replay", "--at", &at, "--format", "json"]),
        ),
        (
            "one `chat` command (recorded)".into(),
            owned(&["chat", "--as", "bench", "accept ZZZ-1"]),
        ),
    ])
}

async fn measure_scale(
    dir: &Path,
    ledgers: [(&Path, &Arc<dyn EventStore>); 2],
    repeat: u32,
) -> anyhow::Result<(Vec<Scaled>, Startup, Load)> {
    let mut startup = Startup::default();
    let mut load = None;
    let mut times: Vec<Vec<Duration>> = Vec::new();
    let mut served: Vec<Vec<Option<Duration>>> = Vec::new();
    let mut names = Vec::new();
    for (n, (file, store)) in ledgers.iter().enumerate() {
        let config = dir.join(format!("cli-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "environment = \"bench\"\nstore = \"sqlite://{}\"\n",
                file.display()
            ),
        )?;
        let cli = |args: &[String]| -> anyhow::Result<Duration> {
            let started = Instant::now();
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
                .arg("--config")
                .arg(&config)
                .env_remove("DOBROBOT_CONFIG")
                .env_remove("DOBROBOT_SERVER")
                .env("RUST_LOG", "warn")
                .args(args)
                .output()?;
            let took = started.elapsed();
            // `chat` exits 1 for a refused (and recorded) command.
            ensure!(
                matches!(output.status.code(), Some(0 | 1)),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            Ok(took)
        };
        // The read models persisted once, from revision 0: what the first process on a ledger
        // without them does (and `projections rebuild`).
        let started = Instant::now();
        cli(&["projections".into(), "rebuild".into()])?;
        startup.rebuild[n] = started.elapsed();
        eprintln!(
            "    read models rebuilt in {:.1} s",
            startup.rebuild[n].as_secs_f64()
        );
        // The first process on a ledger written without one leaves the writer's snapshot.
        cli(&[
            "chat".into(),
            "--as".into(),
            "bench".into(),
            "accept ZZZ-0".into(),
        ])?;
        let mut these = Vec::new();
        names.clear();
        for (name, args) in questions(store).await? {
            let mut best = Duration::MAX;
            for _ in 0..repeat {
                best = best.min(cli(&args)?);
            }
            eprintln!("    {name}: {:.3} s", best.as_secs_f64());
            names.push(name);
            these.push(best);
        }
        times.push(these);

        // The same questions asked of a serve on the ledger, once it is ready.
        let started = Instant::now();
        let (serve, server) = Serving::start(&config)?;
        let remote = |args: &[String]| -> anyhow::Result<Duration> {
            let mut args = args.to_vec();
            args.extend(["--server".to_string(), server.clone()]);
            cli(&args)
        };
        let queue = ["queue".to_string()];
        while remote(&queue).is_err() {
            ensure!(
                started.elapsed() < Duration::from_secs(600),
                "serve was not ready within ten minutes"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        startup.ready[n] = started.elapsed();
        eprintln!(
            "    serve answered after {:.1} s",
            startup.ready[n].as_secs_f64()
        );
        let mut these = Vec::new();
        for (name, args) in questions(store).await? {
            if args[0] == "chat" {
                these.push(None);
                continue;
            }
            let mut best = Duration::MAX;
            for _ in 0..repeat {
                best = best.min(remote(&args)?);
            }
            eprintln!("    {name} --server: {:.3} s", best.as_secs_f64());
            these.push(Some(best));
        }
        startup.rss_kb[n] = rss_kb(serve.0.id());
        startup.first_paint[n] = first_paint(store, &server, repeat).await?;
        served.push(these);
        if n == 1 {
            load = Some(measure_load(store, &server, &config).await?);
        }
    }
    let scaled = names
        .into_iter()
        .enumerate()
        .map(|(i, what)| Scaled {
            what,
            small: times[0][i],
            large: times[1][i],
            server: served[0][i].zip(served[1][i]),
        })
        .collect();
    Ok((
        scaled,
        startup,
        load.context("the large ledger was measured")?,
    ))
}

/// (d) The read API at a steady 200 requests/s, and (e) separate `chat` processes at 50
/// commands/s, beside the `serve` on the large ledger.
struct Load {
    /// Per path: the latencies at about 200 requests/s.
    http: Vec<(String, Paced)>,
    /// `chat` processes: how many ran, how many failed to record (exit 3), p50 and p99 per
    /// command with the process start.
    chats: usize,
    chat_failures: usize,
    chat_p50: Duration,
    chat_p99: Duration,
}

/// `wrk`'s pace: `HTTP_CONNECTIONS` connections, each sending its next request
/// `HTTP_DELAY_MS` after the previous answer, about 200 requests/s in all.
const HTTP_CONNECTIONS: u32 = 2;
const HTTP_DELAY_MS: u32 = 10;
const HTTP_SECONDS: u32 = 10;
const CHAT_RATE: u32 = 50;
const CHAT_SECONDS: u32 = 30;

async fn measure_load(
    store: &Arc<dyn EventStore>,
    server: &str,
    config: &Path,
) -> anyhow::Result<Load> {
    let Subjects {
        ticket,
        service,
        week,
        ..
    } = subjects(store).await?;
    let since: String = form_urlencoded::byte_serialize(week.as_bytes()).collect();
    let mut http = Vec::new();
    for path in [
        "/health".to_string(),
        format!("/api/v1/deployments?service={service}&since={since}"),
        format!("/api/v1/history?ticket={ticket}"),
    ] {
        let paced = wrk(&format!("{server}{path}"))?;
        eprintln!(
            "    GET {path} at {:.0}/s: p50 {:.2} ms, p99 {:.2} ms",
            paced.rate,
            ms(paced.p50),
            ms(paced.p99)
        );
        http.push((path, paced));
    }

    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let runs = at_rate(CHAT_RATE, CHAT_SECONDS, || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = config.to_path_buf();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
                .env_remove("DOBROBOT_CONFIG")
                .env_remove("DOBROBOT_SERVER")
                .env("RUST_LOG", "warn")
                .arg("--config")
                .arg(&config)
                .args([
                    "chat",
                    "--as",
                    "bench",
                    &format!(
                        "dobro #LOAD-{n} https://wiki/x load services=load-{}",
                        n % 7
                    ),
                ])
                .output()
                .await?;
            // 0 recorded, 1 refused and recorded; 3 is a failure to record.
            Ok(matches!(output.status.code(), Some(0 | 1)))
        }
    })
    .await?;
    let chat_failures = runs.iter().filter(|(_, ok)| !ok).count();
    let sorted: Vec<Duration> = runs.iter().map(|(took, _)| *took).collect();
    let load = Load {
        http,
        chats: runs.len(),
        chat_failures,
        chat_p50: quantile(&sorted, 0.5),
        chat_p99: quantile(&sorted, 0.99),
    };
    eprintln!(
        "    chat at {CHAT_RATE}/s for {CHAT_SECONDS} s: {} commands, {} failed, p50 {:.0} ms, p99 {:.0} ms",
        load.chats,
        load.chat_failures,
        ms(load.chat_p50),
        ms(load.chat_p99)
    );
    Ok(load)
}

/// What `wrk` measured on one URL.
struct Paced {
    /// Requests per second, as sent.
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// Loads `url` with `wrk` (Debian's package `wrk`), a load generator of its own process, written
/// in C: `HTTP_CONNECTIONS` connections on one thread, each pausing `HTTP_DELAY_MS` between an
/// answer and its next request, for `HTTP_SECONDS`. Its latencies are from sending a request to
/// its answer; a non-2xx answer or a socket error fails the run.
fn wrk(url: &str) -> anyhow::Result<Paced> {
    let script = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(
        script.path(),
        format!(
            r#"
function delay() return {HTTP_DELAY_MS} end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("dobrobot-bench %d %d %d %d %d\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#
        ),
    )?;
    let output = std::process::Command::new("wrk")
        .args(["-t1", &format!("-c{HTTP_CONNECTIONS}")])
        .arg(format!("-d{HTTP_SECONDS}s"))
        .arg("-s")
        .arg(script.path())
        .arg(url)
        .output()
        .context("running wrk, the load generator of (d) (Debian: apt-get install wrk)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk {url}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dobrobot-bench "))
        .with_context(|| format!("wrk {url} did not report: {stdout}"))?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("wrk's report {line:?}"))?;
    let &[requests, micros, errors, p50, p99] = numbers.as_slice() else {
        bail!("wrk's report {line:?}");
    };
    ensure!(
        errors == 0,
        "wrk {url}: {errors} of {requests} requests failed"
    );
    Ok(Paced {
        rate: requests as f64 / (micros.max(1) as f64 / 1e6),
        p50: Duration::from_micros(p50),
        p99: Duration::from_micros(p99),
    })
}

const TIMER_TICK: Duration = Duration::from_millis(2);

/// Runs `work` `rate` times a second for `seconds` seconds, open loop: each run is timed from
/// when it was due (less the timer's own lateness), so a slow answer does not hide the wait of
/// those due behind it. The latencies, sorted, each with whether the run succeeded.
async fn at_rate<F, Fut>(
    rate: u32,
    seconds: u32,
    mut work: F,
) -> anyhow::Result<Vec<(Duration, bool)>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send + 'static,
{
    let every = Duration::from_secs(1) / rate;
    let start = tokio::time::Instant::now();
    let mut runs = Vec::new();
    for i in 0..rate * seconds {
        let due = start + every * i;
        tokio::time::sleep_until(due).await;
        // The timer wakes up to a tick (1 ms) late: that is not the server's wait. Later than
        // that, the generator is behind, and the time since `due` is charged.
        let issued = tokio::time::Instant::now();
        let from = if issued - due <= TIMER_TICK {
            issued
        } else {
            due
        };
        let run = work();
        runs.push(tokio::spawn(async move {
            let ok = run.await?;
            Ok::<_, anyhow::Error>((from.elapsed(), ok))
        }));
    }
    let mut times = Vec::new();
    for run in runs {
        times.push(run.await??);
    }
    times.sort();
    Ok(times)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_load(large: u64, load: &Load) {
    println!();
    println!(
        "(d) The read API on {} events, paced by wrk: {HTTP_CONNECTIONS} connections, each \
         sending its next request {HTTP_DELAY_MS} ms after an answer, for {HTTP_SECONDS} s:",
        group(large)
    );
    println!();
    println!("| GET | requests/s | p50 | p99 | p99 / p99 of /health | target | met |");
    println!("|---|---:|---:|---:|---:|---:|:---:|");
    let health = load.http.first().map_or(Duration::ZERO, |h| h.1.p99);
    for (i, (path, paced)) in load.http.iter().enumerate() {
        let ratio = paced.p99.as_secs_f64() / health.as_secs_f64().max(1e-9);
        let (target, ok) = if i == 0 {
            ("(baseline)".to_string(), String::new())
        } else {
            (
                "<= 3x and <= 2 ms".to_string(),
                met(ratio <= 3.0 && paced.p99 <= Duration::from_millis(2)).to_string(),
            )
        };
        println!(
            "| `{path}` | {:.0} | {:.2} ms | {:.2} ms | {ratio:.1}x | {target} | {ok} |",
            paced.rate,
            ms(paced.p50),
            ms(paced.p99)
        );
    }
    println!();
    println!(
        "(e) Separate `chat` processes at {CHAT_RATE} commands/s for {CHAT_SECONDS} s beside \
         `serve` on {} events (process start included):",
        group(large)
    );
    println!();
    println!("| commands | failed to record | p50 | p99 | target | met |");
    println!("|---:|---:|---:|---:|---:|:---:|");
    println!(
        "| {} | {} | {:.0} ms | {:.0} ms | 0 failed, p99 <= 200 ms | {} |",
        load.chats,
        load.chat_failures,
        ms(load.chat_p50),
        ms(load.chat_p99),
        met(load.chat_failures == 0 && load.chat_p99 <= Duration::from_millis(200))
    );
}

/// What a process on each ledger (the small one, the large one) costs before it answers.
#[derive(Default)]
struct Startup {
    /// `projections rebuild`: the read models folded from revision 0.
    rebuild: [Duration; 2],
    /// `serve` started on models already persisted, until it answers.
    ready: [Duration; 2],
    /// The serving process's resident memory after answering every question, in KiB.
    rss_kb: [u64; 2],
    /// (f) The timeline's first paint of the last 24 hours of the history, best of the rounds,
    /// and its bars; `None` without a browser.
    first_paint: [Option<(Duration, u64)>; 2],
}

/// (f) The timeline page's first paint of a 24-hour range (the last day of the simulated
/// history) in headless Chromium (`benches/first_paint.py`, Playwright from the Python of
/// `DOBROBOT_PYTHON`, Chromium at `/usr/bin/chromium` or `DOBROBOT_CHROMIUM`): from the
/// navigation's start to the range's bars drawn. `None` when there is no browser.
async fn first_paint(
    store: &Arc<dyn EventStore>,
    server: &str,
    repeat: u32,
) -> anyhow::Result<Option<(Duration, u64)>> {
    let python = std::env::var("DOBROBOT_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    let chromium = std::env::var("DOBROBOT_CHROMIUM")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    let Some(python) = python.filter(|_| Path::new(&chromium).exists()) else {
        eprintln!(
            "    (f) skipped: set DOBROBOT_PYTHON (scripts/test makes one) and install chromium"
        );
        return Ok(None);
    };
    let end = subjects(store).await?.end;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/first_paint.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args([
            server.to_string(),
            (end - TimeDelta::hours(24)).to_rfc3339(),
            end.to_rfc3339(),
            (repeat + 2).to_string(),
            chromium,
        ])
        .output()
        .await?;
    ensure!(
        output.status.success(),
        "first_paint.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    // The first round also loads the browser's caches: the best of the others.
    let times: Vec<f64> = answer["ms"]
        .as_array()
        .context("first_paint.py's times")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    let best = times.iter().skip(1).copied().fold(f64::INFINITY, f64::min);
    let bars = answer["bars"].as_u64().unwrap_or(0);
    eprintln!("    (f) the timeline's first paint of 24 hours: {best:.0} ms, {bars} bars");
    Ok(Some((Duration::from_secs_f64(best / 1000.0), bars)))
}

/// A process's resident set (`VmRSS`), in KiB; 0 where `/proc` does not say.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn print_startup(small: u64, large: u64, startup: &Startup) {
    println!();
    println!(
        "| on {} / {} events | small | large | target | met |",
        group(small),
        group(large)
    );
    println!("|---|---:|---:|---:|:---:|");
    println!(
        "| read models rebuilt from revision 0 | {:.1} s | {:.1} s | (reported) | |",
        startup.rebuild[0].as_secs_f64(),
        startup.rebuild[1].as_secs_f64()
    );
    println!(
        "| `serve` answering, from persisted models | {:.2} s | {:.2} s | <= 2 s | {} |",
        startup.ready[0].as_secs_f64(),
        startup.ready[1].as_secs_f64(),
        met(startup.ready[1] <= Duration::from_secs(2))
    );
    println!(
        "| `serve` resident memory after the questions | {} MB | {} MB | <= 200 MB | {} |",
        startup.rss_kb[0] / 1024,
        startup.rss_kb[1] / 1024,
        met(startup.rss_kb[1] > 0 && startup.rss_kb[1] <= 200 * 1024)
    );
    match startup.first_paint {
        [
            Some((small_paint, small_bars)),
            Some((large_paint, large_bars)),
        ] => println!(
            "| (f) the timeline's first paint of the history's last 24 hours (Chromium) | {:.0} ms ({small_bars} bars) | {:.0} ms ({large_bars} bars), {:.1}x | <= 1 s | {} |",
            ms(small_paint),
            ms(large_paint),
            large_paint.as_secs_f64() / small_paint.as_secs_f64().max(1e-9),
            met(large_paint <= Duration::from_secs(1))
        ),
        _ => println!(
            "| (f) the timeline's first paint | not measured: no browser (DOBROBOT_PYTHON, chromium) | | <= 1 s | |"
        ),
    }
}

fn print_scale(small: u64, large: u64, scale: &[Scaled]) {
    println!();
    println!(
        "(c) The CLI on {} events versus {} events of the same mix (process start included, \
         best of the rounds):",
        group(large),
        group(small)
    );
    println!();
    println!(
        "| question | {} events | {} events | ratio | target | met |",
        group(small),
        group(large)
    );
    println!("|---|---:|---:|---:|---:|:---:|");
    for s in scale {
        let ratio = s.large.as_secs_f64() / s.small.as_secs_f64();
        println!(
            "| {} | {:.3} s | {:.3} s | {:.1}x | <= 2x | {} |",
            s.what,
            s.small.as_secs_f64(),
            s.large.as_secs_f64(),
            ratio,
            met(ratio <= 2.0)
        );
        if let Some((small, large)) = s.server {
            let ratio = large.as_secs_f64() / small.as_secs_f64();
            println!(
                "| {} with `--server` | {:.3} s | {:.3} s | {:.1}x | <= 2x | {} |",
                s.what,
                small.as_secs_f64(),
                large.as_secs_f64(),
                ratio,
                met(ratio <= 2.0)
            );
        }
    }
}

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(text) => text
            .replace(['_', ','], "")
            .parse()
            .with_context(|| format!("{name}={text} is not a whole number")),
        Err(_) => Ok(default),
    }
}

// ---------------------------------------------------------------------------------------------
// The machine

struct Machine {
    cores: usize,
    cpu: String,
    os: String,
    date: String,
}

impl Machine {
    fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".to_string());
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| format!("{} {}", std::env::consts::OS, r.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            os,
            date: Utc::now().format("%Y-%m-%d").to_string(),
        }
    }

    fn summary(&self) -> String {
        format!("{}, {} cores, {}", self.date, self.cores, self.cpu)
    }

    fn print(&self) {
        println!("# dobrobot ledger benchmark");
        println!();
        println!("- date: {}", self.date);
        println!("- cores: {} ({})", self.cores, self.cpu);
        println!("- os: {}", self.os);
        println!(
            "- DOBROBOT_BENCH_EVENTS={}",
            std::env::var("DOBROBOT_BENCH_EVENTS").unwrap_or_else(|_| "(unset: 1000000)".into())
        );
        println!(
            "- DOBROBOT_BENCH_COMMANDS={}",
            std::env::var("DOBROBOT_BENCH_COMMANDS").unwrap_or_else(|_| "(unset: 20000)".into())
        );
        println!();
    }
}

// ---------------------------------------------------------------------------------------------
// (a) A realistic ledger, generated through the domain

/// Ticket projects and the services config maps them to.
const PROJECTS: &[(&str, &[&str])] = &[
    ("PAY", &["pay-api", "pay-worker"]),
    ("AUTH", &["auth"]),
    ("SHOP", &["shop-web", "shop-api"]),
    ("SEARCH", &["search"]),
    ("MAIL", &["mailer"]),
    ("BILL", &["billing", "ledger"]),
    ("EDGE", &["gateway"]),
    ("DATA", &["etl", "warehouse"]),
    ("MOB", &["mobile-api"]),
    ("OPS", &["metrics", "alerts"]),
];
/// Services a request names with `services=` instead of its project's.
const EXTRA_SERVICES: &[&str] = &[
    "pay-api",
    "auth",
    "search",
    "mailer",
    "gateway",
    "etl",
    "cdn",
    "images",
    "notifications",
];
const COMMENTS: &[&str] = &[
    "weekly release",
    "hotfix for checkout timeouts",
    "feature flag cleanup",
    "bump dependencies, no functional change",
    "new retry policy for webhooks",
    "schema migration, backwards compatible",
    "config change: raise pool size",
    "rollout of the new onboarding flow",
];
const REASONS: &[&str] = &[
    "error rate went up after deploy",
    "latency p99 doubled",
    "no rollback plan in the wiki",
    "conflicts with the database maintenance tonight",
    "missing sign-off from QA",
];
const APPROVERS: usize = 6;
const ADMINS: usize = 4;
const DEVELOPERS: usize = 240;
/// Releases in flight at once.
const SLOTS: usize = 120;

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("bench user names are valid")
}

fn service(name: &str) -> ServiceName {
    ServiceName::parse(name).expect("bench service names are valid")
}

/// Approvers `lead1..`, admins `ops1..`, services by project, two conflict groups, the standard
/// checks (ticket pattern, wiki link required).
fn bench_policy() -> Policy {
    let pattern = Regex::new(DEFAULT_TICKET_PATTERN).expect("the default pattern is valid");
    let group = |name: &str, services: &[&str]| ConflictGroup {
        name: GroupName::parse(name).expect("a group name"),
        services: services.iter().map(|s| service(s)).collect(),
    };
    Policy {
        approvers: (1..=APPROVERS).map(|i| user(&format!("lead{i}"))).collect(),
        admins: (1..=ADMINS).map(|i| user(&format!("ops{i}"))).collect(),
        four_eyes: true,
        services_by_project: PROJECTS
            .iter()
            .map(|(p, s)| (p.to_string(), s.iter().map(|s| service(s)).collect()))
            .collect(),
        conflict_groups: vec![
            group("money", &["pay-api", "pay-worker", "billing", "ledger"]),
            group("edge", &["gateway", "cdn", "shop-web"]),
        ],
        checks: Policy::standard_checks(pattern, true),
        ..Policy::default()
    }
}

/// splitmix64: deterministic, fast, and enough for picking what happens next.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One line of work people keep coming back to: a developer releasing one project's tickets.
struct Slot {
    project: &'static str,
    requester: String,
    ticket: Option<TicketKey>,
}

/// The simulation: the domain's state, and what people type next.
struct Generator {
    rng: Rng,
    policy: Policy,
    state: State,
    slots: Vec<Slot>,
    next_number: u64,
    at: DateTime<Utc>,
    prev_hash: String,
    freeze_left: u32,
    commands: u64,
    by_type: [u64; Event::TYPES.len()],
}

impl Generator {
    fn new() -> Self {
        let mut rng = Rng(SEED);
        let slots = (0..SLOTS)
            .map(|i| Slot {
                project: rng.pick(PROJECTS).0,
                requester: format!("dev{}", (i * 7 + rng.below(5) as usize) % DEVELOPERS + 1),
                ticket: None,
            })
            .collect();
        Generator {
            rng,
            policy: bench_policy(),
            state: State::default(),
            slots,
            next_number: 1000,
            at: DateTime::from_timestamp_millis(1_704_096_000_000).expect("a valid start time"),
            prev_hash: GENESIS_HASH.to_string(),
            freeze_left: 0,
            commands: 0,
            by_type: [0; Event::TYPES.len()],
        }
    }

    /// Records the next command (its events, or its refusal) into `out`.
    fn step(&mut self, out: &mut Vec<NewEvent>) {
        self.at += TimeDelta::milliseconds(200 + self.rng.below(90_000) as i64);
        let (actor, text) = self.next_command();
        let command = match parse(&text) {
            Ok(Input::Command(command)) => command,
            other => panic!("the generator typed `{text}`, which is not a command: {other:?}"),
        };
        let actor = user(&actor);
        let events = decide(&self.state, &actor, &command, &self.policy, self.at)
            .unwrap_or_else(|refusal| vec![refused(&actor, &command, refusal)]);
        let context = Context {
            actor: Actor {
                name: format!("Person {}", actor.as_str()),
                id: actor,
                source: if self.rng.chance(900) {
                    Source::Slack
                } else {
                    Source::Cli
                },
            },
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            command: text,
            recorded_at: self.at,
        };
        for event in events {
            let (new, hash) = envelope::seal(&event, Uuid::now_v7(), &context, &self.prev_hash);
            self.prev_hash = hash;
            self.state.evolve(&event, self.at);
            let index = Event::TYPES
                .iter()
                .position(|t| *t == event.type_name())
                .expect("every event has a known type");
            self.by_type[index] += 1;
            out.push(new);
        }
        self.commands += 1;
    }

    /// Who types what next, as (user id, text).
    fn next_command(&mut self) -> (String, String) {
        if let Some(command) = self.freeze_or_thaw() {
            return command;
        }
        if self.rng.chance(25) {
            return self.mistake();
        }
        // A few slots at random, then every slot in turn: someone who can make progress does.
        let mut fallback = None;
        let first = self.rng.below(SLOTS as u64) as usize;
        for i in 0..8 + SLOTS {
            let slot = if i < 8 {
                self.rng.below(SLOTS as u64) as usize
            } else {
                (first + i) % SLOTS
            };
            match self.advance(slot) {
                (command, true) => return command,
                (command, false) => fallback = Some(command),
            }
        }
        // Everyone waits for the freeze to end.
        if self.freeze_left > 0 {
            self.freeze_left = 0;
            let approver = format!("lead{}", 1 + self.rng.below(APPROVERS as u64));
            return (approver, "unfreeze".to_string());
        }
        fallback.expect("the slots leave a command")
    }

    /// An approver freezes now and then, and unfreezes a while later.
    fn freeze_or_thaw(&mut self) -> Option<(String, String)> {
        let approver = format!("lead{}", 1 + self.rng.below(APPROVERS as u64));
        if self.freeze_left > 0 {
            self.freeze_left -= 1;
            return (self.freeze_left == 0).then(|| (approver, "unfreeze".to_string()));
        }
        if !self.rng.chance(1) {
            return None;
        }
        self.freeze_left = 20 + self.rng.below(150) as u32;
        let text = if self.rng.chance(500) {
            "freeze incident INC-4411: payments degraded services=pay-api,billing".to_string()
        } else {
            "freeze end of quarter closing".to_string()
        };
        Some((approver, text))
    }

    /// Someone types something the rules refuse.
    fn mistake(&mut self) -> (String, String) {
        let dev = format!("dev{}", 1 + self.rng.below(DEVELOPERS as u64));
        let slot = self.rng.below(SLOTS as u64) as usize;
        let open = self.slots[slot]
            .ticket
            .as_ref()
            .filter(|t| self.state.release(t).is_some())
            .map(|t| t.as_str().to_string());
        match (self.rng.below(5), open) {
            (0, Some(key)) => (dev, format!("accept {key}")),
            (1, Some(key)) => (dev, format!("here {key}")),
            (2, Some(key)) => (dev, format!("dobro {key} https://wiki.example.com/again")),
            (3, _) => {
                self.next_number += 1;
                (
                    dev,
                    format!("dobro #SHOP-{} forgot the wiki link", self.next_number),
                )
            }
            _ => (dev, format!("dep finish NOPE-{}", self.rng.below(100))),
        }
    }

    /// The next step of the slot's release. `false` when a person would rather wait: the start
    /// would be refused now.
    fn advance(&mut self, index: usize) -> ((String, String), bool) {
        let approver = format!("lead{}", 1 + self.rng.below(APPROVERS as u64));
        let admin = format!("ops{}", 1 + self.rng.below(ADMINS as u64));
        let slot = &self.slots[index];
        let requester = slot.requester.clone();
        let release = slot
            .ticket
            .as_ref()
            .and_then(|t| self.state.release(t))
            .filter(|r| r.requester.as_str() == requester);
        let Some(release) = release else {
            self.next_number += 1;
            let key = format!("{}-{}", slot.project, self.next_number);
            let project = slot.project;
            self.slots[index].ticket = Some(TicketKey::parse(&key).expect("a valid key"));
            return ((requester, self.request_text(project, &key)), true);
        };
        let key = release.ticket.as_str().to_string();
        let roll = self.rng.below(1000);
        let command = match (&release.stage, &release.admin) {
            (Stage::Requested, _) if roll < 30 => {
                (approver, format!("reject {key} {}", self.rng.pick(REASONS)))
            }
            (Stage::Requested, _) if roll < 45 => (requester, format!("cancel {key}")),
            (Stage::Requested, _) => (approver, format!("accept {key}")),
            (Stage::Accepted { .. }, AdminPresence::Needed) => (admin, format!("here {key}")),
            (Stage::Accepted { .. }, _) => {
                let ready = start_blockers(&self.state, release, &self.policy).is_empty();
                let by = if roll < 100 { admin } else { requester };
                // People mostly wait for their turn; some try anyway and are refused.
                return ((by, format!("dep start {key}")), ready || roll % 100 == 7);
            }
            (Stage::Deploying { .. }, _) if roll < 30 => (
                requester,
                format!("dep rollback {key} {}", self.rng.pick(REASONS)),
            ),
            (Stage::Deploying { .. }, _) => (requester, format!("dep finish {key}")),
        };
        (command, true)
    }

    fn request_text(&mut self, project: &str, key: &str) -> String {
        let link = if self.rng.chance(500) {
            format!("<https://wiki.example.com/{project}/{key}|release notes>")
        } else {
            format!("https://wiki.example.com/{project}/{key}")
        };
        let mut text = format!("dobro #{key} {link} {}", self.rng.pick(COMMENTS));
        if self.rng.chance(600) {
            text.push_str(" no_need_admin");
        }
        if self.rng.chance(200) {
            text.push_str(" services=");
            text.push_str(self.rng.pick(EXTRA_SERVICES));
        }
        text
    }
}

struct Generated {
    store: Arc<dyn EventStore>,
    events: u64,
    commands: u64,
    by_type: [u64; Event::TYPES.len()],
    elapsed: Duration,
    file_bytes: u64,
}

impl Generated {
    fn print(&self) {
        println!(
            "Generated ledger: {} events from {} commands in {:.1} s, SQLite file {:.0} MiB",
            group(self.events),
            group(self.commands),
            self.elapsed.as_secs_f64(),
            self.file_bytes as f64 / (1024.0 * 1024.0)
        );
        println!();
        println!("| event type | count | share |");
        println!("|---|---:|---:|");
        for (name, count) in Event::TYPES.iter().zip(self.by_type) {
            println!(
                "| {name} | {} | {:.1}% |",
                group(count),
                100.0 * count as f64 / self.events.max(1) as f64
            );
        }
        println!();
    }
}

/// Writes a ledger of at least `events` events: the simulation runs on its own thread and hands
/// over sealed batches, which are appended as they come.
async fn generate(path: &Path, events: u64) -> anyhow::Result<Generated> {
    let started = Instant::now();
    let store = store::open(&format!("sqlite://{}", path.display())).await?;
    let (batches, mut rx) = mpsc::channel::<(Vec<NewEvent>, Vec<WriterSnapshot>)>(4);
    let simulation = std::thread::spawn(move || {
        let mut generator = Generator::new();
        let mut produced = 0u64;
        while produced < events {
            let mut batch = Vec::with_capacity(APPEND_BATCH + 4);
            let mut snapshots = Vec::new();
            while batch.len() < APPEND_BATCH && produced + (batch.len() as u64) < events {
                let before = produced + batch.len() as u64;
                generator.step(&mut batch);
                // The writer's snapshots, as a writer appending these events would leave them.
                let after = produced + batch.len() as u64;
                if after / snapshots::EVERY > before / snapshots::EVERY {
                    snapshots.push(WriterSnapshot::new(
                        after - 1,
                        generator.prev_hash.clone(),
                        generator.at,
                        generator.state.clone(),
                        &HashSet::new(),
                    ));
                }
            }
            produced += batch.len() as u64;
            if batches.blocking_send((batch, snapshots)).is_err() {
                break;
            }
        }
        generator
    });
    let stream = bench_stream();
    let mut expected = ExpectedRevision::NoStream;
    while let Some((batch, taken)) = rx.recv().await {
        let appended = store.append(&stream, expected, batch).await?;
        expected = ExpectedRevision::Exact(appended.last_revision);
        for snapshot in &taken {
            snapshots::write(&store, &stream, snapshot).await?;
        }
    }
    let generator = simulation
        .join()
        .map_err(|_| anyhow::anyhow!("the simulation panicked"))?;
    let written = store.last_revision(&stream).await?.map_or(0, |r| r + 1);
    let file_bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    Ok(Generated {
        store,
        events: written,
        commands: generator.commands,
        by_type: generator.by_type,
        elapsed: started.elapsed(),
        file_bytes,
    })
}

fn bench_stream() -> String {
    ledger::stream_name("bench")
}

// ---------------------------------------------------------------------------------------------
// (a) Rebuild versus raw read + decode

/// The best time of each way of reading the ledger, and what was read.
struct Rebuild {
    events: u64,
    /// Store reads only, nothing decoded.
    read_only: Duration,
    /// The baseline: store reads, data and metadata to `serde_json::Value`.
    baseline: Duration,
    /// Store reads and `envelope::decode` (typed event and metadata), no projection.
    decode: Duration,
    /// Ours: `projections::build` of Live + Deployments + History.
    rebuild: Duration,
}

/// Reads the whole stream page by page, calling `f` on every event; returns the count.
async fn scan(
    store: &Arc<dyn EventStore>,
    mut f: impl FnMut(&RecordedEvent) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let stream = bench_stream();
    let mut count = 0u64;
    let mut pages = store.read_pages(&stream, 0);
    while let Some(page) = pages.try_next().await? {
        for event in &page {
            f(event)?;
        }
        count += page.len() as u64;
    }
    Ok(count)
}

async fn timed<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<(T, Duration)> {
    let started = Instant::now();
    let out = work.await?;
    Ok((out, started.elapsed()))
}

async fn measure_rebuild(store: &Arc<dyn EventStore>, repeat: u32) -> anyhow::Result<Rebuild> {
    let mut best: Option<Rebuild> = None;
    for round in 1..=repeat {
        eprintln!("(a) round {round}/{repeat}");
        let (events, read_only) = timed(scan(store, |e| {
            black_box(e);
            Ok(())
        }))
        .await?;
        let (baseline_events, baseline) = timed(scan(store, |e| {
            black_box(serde_json::from_slice::<serde_json::Value>(&e.data)?);
            black_box(serde_json::from_slice::<serde_json::Value>(&e.metadata)?);
            Ok(())
        }))
        .await?;
        let (decoded_events, decode) = timed(scan(store, |e| {
            black_box(envelope::decode(e)?);
            Ok(())
        }))
        .await?;

        let mut live = Live::default();
        let mut deployments = Deployments::default();
        let mut history = History::new(HistoryFilter::default());
        let started = Instant::now();
        let last = {
            let mut all: [&mut dyn Projection; 3] = [&mut live, &mut deployments, &mut history];
            projections::build(store, &bench_stream(), AsOf::Latest, &mut all).await?
        };
        let rebuild = started.elapsed();
        let rebuilt = last.map_or(0, |r| r + 1);
        ensure!(
            [
                baseline_events,
                decoded_events,
                rebuilt,
                history.entries.len() as u64
            ]
            .iter()
            .all(|n| *n == events),
            "the measurements read different ledgers: {events} raw, {baseline_events} baseline, \
             {decoded_events} decoded, {rebuilt} rebuilt, {} in history",
            history.entries.len()
        );
        eprintln!(
            "    read {:.2}s, baseline {:.2}s, decode {:.2}s, rebuild {:.2}s ({} open, {} deployments)",
            read_only.as_secs_f64(),
            baseline.as_secs_f64(),
            decode.as_secs_f64(),
            rebuild.as_secs_f64(),
            live.state.releases.len(),
            deployments.all.len()
        );
        let this = Rebuild {
            events,
            read_only,
            baseline,
            decode,
            rebuild,
        };
        best = Some(match best {
            None => this,
            Some(b) => Rebuild {
                events,
                read_only: b.read_only.min(this.read_only),
                baseline: b.baseline.min(this.baseline),
                decode: b.decode.min(this.decode),
                rebuild: b.rebuild.min(this.rebuild),
            },
        });
    }
    best.context("at least one round")
}

// ---------------------------------------------------------------------------------------------
// (b) Ledger throughput versus one fsync per command

struct Throughput {
    commands: u64,
    ledger: Duration,
    baseline: Duration,
    refused: u64,
    mean_row_bytes: u64,
}

/// What submitter `task` types, in order: its own ticket and service, dobro -> accept -> dep
/// start -> dep finish, over and over; every command is accepted.
fn submissions(task: u64, count: u64) -> anyhow::Result<Vec<Submission>> {
    let dev = format!("dev{task}");
    let approver = format!("lead{}", 1 + task % APPROVERS as u64);
    (0..count)
        .map(|i| {
            let key = format!("BENCH-{}", task * 1_000_000 + i / 4);
            let (who, text) = match i % 4 {
                0 => (
                    &dev,
                    format!(
                        "dobro #{key} https://wiki.example.com/BENCH/{key} weekly release \
                         no_need_admin services=svc-{task}"
                    ),
                ),
                1 => (&approver, format!("accept {key}")),
                2 => (&dev, format!("dep start {key}")),
                _ => (&dev, format!("dep finish {key}")),
            };
            let Ok(Input::Command(command)) = parse(&text) else {
                bail!("`{text}` is not a command");
            };
            Ok(Submission {
                command,
                actor: Actor {
                    id: user(who),
                    name: format!("Person {who}"),
                    source: Source::Slack,
                },
                text,
                delivery: None,
                correlation_id: None,
            })
        })
        .collect()
}

/// Every submitter sends its commands one after another; returns the time for all and how many
/// were refused.
async fn run_ledger(path: &Path, settings: &Settings) -> anyhow::Result<(Duration, u64)> {
    let store = store::open(&format!("sqlite://{}", path.display())).await?;
    let policy = Arc::new(bench_policy());
    let ledger = Ledger::open(store, bench_stream(), policy, Options::default()).await?;
    let per_task = settings.commands / settings.submitters;
    let work = (0..settings.submitters)
        .map(|task| submissions(task, per_task))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|submissions| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut refused = 0u64;
                for submission in submissions {
                    match ledger.submit(submission).await?.result {
                        Decision::Accepted(_) => {}
                        Decision::Refused(_) | Decision::AlreadyRecorded => refused += 1,
                    }
                }
                anyhow::Ok(refused)
            })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        refused += task.await??;
    }
    Ok((started.elapsed(), refused))
}

/// The baseline's rows: events of the same commands, sealed the same way.
fn baseline_rows(count: u64) -> anyhow::Result<Vec<NewEvent>> {
    let policy = bench_policy();
    let mut state = State::default();
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut rows = Vec::with_capacity(count as usize);
    for submission in submissions(1, count)? {
        let command: &Command = &submission.command;
        let now = Utc::now();
        let events = decide(&state, &submission.actor.id, command, &policy, now)
            .map_err(|r| anyhow::anyhow!("baseline command refused: {r:?}"))?;
        let context = Context {
            actor: submission.actor.clone(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            command: submission.text.clone(),
            recorded_at: now,
        };
        for event in events {
            let (new, hash) = envelope::seal(&event, Uuid::now_v7(), &context, &prev_hash);
            prev_hash = hash;
            state.evolve(&event, context.recorded_at);
            rows.push(new);
        }
    }
    Ok(rows)
}

/// One transaction, one INSERT, one COMMIT (one fsync) per command, on a table like the store's.
fn run_baseline(path: &Path, rows: &[NewEvent]) -> anyhow::Result<Duration> {
    let mut conn = Connection::open(path)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    ensure!(mode.eq_ignore_ascii_case("wal"), "journal mode is {mode}");
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE events (
            position   INTEGER PRIMARY KEY,
            stream     TEXT    NOT NULL,
            revision   INTEGER NOT NULL,
            id         BLOB    NOT NULL UNIQUE,
            event_type TEXT    NOT NULL,
            data       BLOB    NOT NULL,
            metadata   BLOB    NOT NULL,
            created_ms INTEGER NOT NULL,
            UNIQUE (stream, revision)
        ) STRICT;",
    )?;
    let stream = bench_stream();
    let started = Instant::now();
    for (revision, row) in (0i64..).zip(rows) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO events (stream, revision, id, event_type, data, metadata, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            stream,
            revision,
            row.id.as_bytes().as_slice(),
            row.event_type,
            row.data,
            row.metadata,
            Utc::now().timestamp_millis(),
        ])?;
        tx.commit()?;
    }
    Ok(started.elapsed())
}

async fn measure_throughput(dir: &Path, settings: &Settings) -> anyhow::Result<Throughput> {
    let commands = settings.commands / settings.submitters * settings.submitters;
    ensure!(
        commands > 0,
        "DOBROBOT_BENCH_COMMANDS must be at least the number of submitters"
    );
    let rows = Arc::new(baseline_rows(commands)?);
    let mean_row_bytes = rows
        .iter()
        .map(|r| (r.data.len() + r.metadata.len() + r.event_type.len() + 16) as u64)
        .sum::<u64>()
        / rows.len() as u64;
    let mut best_ledger = Duration::MAX;
    let mut best_baseline = Duration::MAX;
    let mut refused = 0;
    for round in 1..=settings.repeat {
        eprintln!("(b) round {round}/{}", settings.repeat);
        let (ledger, r) = run_ledger(&dir.join(format!("ledger-{round}.sqlite")), settings).await?;
        refused += r;
        let path = dir.join(format!("baseline-{round}.sqlite"));
        let rows = Arc::clone(&rows);
        let baseline = tokio::task::spawn_blocking(move || run_baseline(&path, &rows)).await??;
        eprintln!(
            "    ledger {:.2}s, baseline {:.2}s",
            ledger.as_secs_f64(),
            baseline.as_secs_f64()
        );
        best_ledger = best_ledger.min(ledger);
        best_baseline = best_baseline.min(baseline);
    }
    Ok(Throughput {
        commands,
        ledger: best_ledger,
        baseline: best_baseline,
        refused,
        mean_row_bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// The report

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// `1234567` -> `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(count: u64, elapsed: Duration, unit: &str) -> String {
    format!(
        "{} {unit}",
        group(per_second(count, elapsed).round() as u64)
    )
}

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn print_results(settings: &Settings, a: &Rebuild, b: &Throughput) {
    let rebuild_ratio = per_second(a.events, a.rebuild) / per_second(a.events, a.baseline);
    let throughput_ratio = per_second(b.commands, b.ledger) / per_second(b.commands, b.baseline);
    println!("| measurement | ours | baseline (same run) | ratio | target | met |");
    println!("|---|---:|---:|---:|---:|:---:|");
    println!(
        "| (a) rebuild Live + Deployments + History from {} events | {} | {} | {:.2} | >= 0.5 | {} |",
        group(a.events),
        rate(a.events, a.rebuild, "events/s"),
        rate(a.events, a.baseline, "events/s"),
        rebuild_ratio,
        met(rebuild_ratio >= 0.5),
    );
    println!(
        "| (b) {} commands through `Ledger::submit`, {} submitters, synchronous=FULL | {} | {} | {:.1}x | >= 4x | {} |",
        group(b.commands),
        settings.submitters,
        rate(b.commands, b.ledger, "commands/s"),
        rate(b.commands, b.baseline, "commands/s"),
        throughput_ratio,
        met(throughput_ratio >= 4.0),
    );
    println!();
    println!(
        "Best of {} rounds each. (a) baseline: the same rows read through the store in pages of \
         {}, data and metadata parsed to `serde_json::Value`. (b) baseline: one INSERT + \
         COMMIT per command with rusqlite, WAL, synchronous=FULL, mean row {} bytes; {} of the \
         ledger's commands were refused.",
        settings.repeat,
        store::READ_PAGE,
        b.mean_row_bytes,
        b.refused
    );
    println!();
    println!("Where the time of (a) goes (best of each):");
    println!();
    println!("| step | time | events/s |");
    println!("|---|---:|---:|");
    let steps = [
        ("store reads only (SQLite, row copies)", a.read_only),
        (
            "reads + `serde_json::Value` of data and metadata (baseline)",
            a.baseline,
        ),
        (
            "reads + `envelope::decode` (typed event and metadata)",
            a.decode,
        ),
        (
            "reads + decode + Live, Deployments, History (ours)",
            a.rebuild,
        ),
    ];
    for (name, elapsed) in steps {
        println!(
            "| {name} | {:.2} s | {} |",
            elapsed.as_secs_f64(),
            group(per_second(a.events, elapsed).round() as u64)
        );
    }
}
