//! `dobrobot projections install`: creates or updates the server-side projections
//! (`projections/*.js`) on the configured EventStoreDB. See `store::esdb::projections` for what they are
//! and how installing works.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::store::EventStore;
use crate::store::esdb::projections::{self, InstallError};

pub async fn install(config: &Config, _store: &Arc<dyn EventStore>) -> Result<ExitCode> {
    let policy = config.policy()?;
    let stream = config.stream();
    let installed = match projections::install(&config.store, &stream, &policy).await {
        Ok(installed) => installed,
        Err(error @ InstallError::NotEventStoreDb { .. }) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
        Err(error) => return Err(error.into()),
    };
    let mut out = std::io::stdout().lock();
    for (projection, action) in installed {
        let emits = if projection.emits() {
            ", emit enabled"
        } else {
            ""
        };
        writeln!(
            out,
            "{action} {} (continuous, from {stream}{emits})",
            projection.name()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
