//! Logging, set up once: human-readable by default, JSON with `--log-format json` or
//! `DOBROBOT_LOG_FORMAT=json`; the level from `RUST_LOG`, else the command's own default (the
//! service logs what it does at `info`; `chat` prints its replies and logs only warnings). Logs
//! go to stderr so that the CLI's own output on stdout stays clean for scripts, and carry colour
//! codes only when stderr is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use tracing::info;

use tracing_subscriber::EnvFilter;

pub fn init(json: bool, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests that run the CLI in-process) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Logs how far a long piece of work over the ledger is (a migration, a rebuild), at most every
/// few seconds and once at the end, never a line per event.
pub struct Progress {
    what: &'static str,
    started: Instant,
    last_log: Instant,
    from: u64,
    total: u64,
}

const PROGRESS_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    /// Work on revisions `from..total`; `what` names what is counted ("copied", "applied").
    pub fn new(what: &'static str, from: u64, total: u64) -> Self {
        let now = Instant::now();
        Progress {
            what,
            started: now,
            last_log: now,
            from,
            total,
        }
    }

    /// `next` is the first revision not yet done.
    pub fn report(&mut self, next: u64) {
        let now = Instant::now();
        if next < self.total && now.duration_since(self.last_log) < PROGRESS_EVERY {
            return;
        }
        self.last_log = now;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let done = next.saturating_sub(self.from);
        let per_second = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        info!(
            what = self.what,
            done,
            position = next,
            total = self.total,
            percent = format_args!("{:.1}", 100.0 * next as f64 / self.total.max(1) as f64),
            events_per_second = format_args!("{per_second:.0}"),
            "progress"
        );
    }
}
