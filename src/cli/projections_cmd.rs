//! `dobrobot projections install`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::store::EventStore;

pub async fn install(_config: &Config, _store: &Arc<dyn EventStore>) -> Result<ExitCode> {
    anyhow::bail!("projections install is being written")
}
