//! A site for tests through the binary: a temp dir with the repository's example config, its
//! store pointed at `ledger.db` in the dir, and the binary run there with no `DOBROBOT_*`
//! variable from the caller (`chat`, listings as JSON).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// The example config of the repository (the README's, as the issue wrote it).
pub const ISSUE_CONFIG: &str = include_str!("../../dobrobot.example.toml");

/// A temp dir with the issue's config in it, its store pointed at `ledger.db` in the dir.
pub struct Site {
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Site {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let text = ISSUE_CONFIG.replace(
            r#"store = "sqlite://data/ledger.db""#,
            &format!("store = {store:?}"),
        );
        assert_ne!(text, ISSUE_CONFIG, "the store line was replaced");
        Site::with_config(dir, &text)
    }

    pub fn with_config(dir: TempDir, text: &str) -> Self {
        let config = dir.path().join("dobrobot.toml");
        std::fs::write(&config, text).expect("write the config");
        Site { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with `--config`, run in the temp dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = bare(self.path());
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// `chat --as USER TEXT`: the exit code and the reply.
    pub fn chat(&self, user: &str, text: &str) -> (i32, String) {
        let output = self
            .cmd(&["chat", "--as", user, text])
            .output()
            .expect("run dobrobot");
        let code = output.status.code().expect("an exit code");
        (code, stdout(&output))
    }

    /// `chat` that must be carried out (exit 0); the reply.
    #[track_caller]
    pub fn done(&self, user: &str, text: &str) -> String {
        self.expect(0, user, text)
    }

    /// `chat` that must be refused (exit 1); the reply.
    #[track_caller]
    pub fn refused(&self, user: &str, text: &str) -> String {
        self.expect(1, user, text)
    }

    /// `chat` that must not be understood (exit 2); the reply.
    #[track_caller]
    pub fn invalid(&self, user: &str, text: &str) -> String {
        self.expect(2, user, text)
    }

    #[track_caller]
    pub fn expect(&self, code: i32, user: &str, text: &str) -> String {
        let (actual, reply) = self.chat(user, text);
        assert_eq!(
            actual, code,
            "`{text}` as {user}: exit {actual}, reply:\n{reply}"
        );
        reply
    }

    /// A listing as JSON.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let output = self.cmd(&args).output().expect("run dobrobot");
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_str(&stdout(&output)).expect("the listing is JSON")
    }
}

/// The binary with no `DOBROBOT_*` variable from the caller, run in `dir`.
pub fn bare(dir: &Path) -> Command {
    Command::from(bare_process(dir))
}

/// `bare` as a plain process, for a test that holds its pipes.
pub fn bare_process(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DOBROBOT_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir);
    cmd
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 errors")
}
