//! Logging, set up once: human-readable by default, JSON with `--log-format json` or
//! `DOBROBOT_LOG_FORMAT=json`; the level from `RUST_LOG`, else the command's own default (the
//! service logs what it does at `info`; `chat` prints its replies and logs only warnings). Logs
//! go to stderr so that the CLI's own output on stdout stays clean for scripts, and carry colour
//! codes only when stderr is a terminal.

use std::io::IsTerminal;

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
