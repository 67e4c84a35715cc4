//! `dobrobot migrate --from URL --to URL`.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;

pub async fn run(_config: &Config, _from: &str, _to: &str) -> Result<ExitCode> {
    anyhow::bail!("migrate is being written")
}
