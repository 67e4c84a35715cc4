//! `dobrobot serve` as real processes, for the tests that kill one with SIGKILL: a free port on
//! 127.0.0.1, the process (killed when dropped, also when a test fails), the binary with no
//! setting inherited from the caller's environment, and waiting until it answers `/health`.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A running `dobrobot serve`, killed when dropped (also when a test fails).
pub struct Serve(pub Child);

impl Serve {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with `dir/dobrobot.toml`, run in `dir`, with none of the variables that override
/// the config inherited.
pub fn dobrobot(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dobrobot"));
    for name in dobrobot::config::ENV_OVERRIDES {
        command.env_remove(name);
    }
    command
        .arg("--config")
        .arg(dir.join("dobrobot.toml"))
        .current_dir(dir);
    command
}

/// Waits until the serve on `port` answers `/health`.
pub async fn healthy(http: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve on {port} did not answer /health");
}
