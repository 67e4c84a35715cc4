//! The client handle and how a call of the port is run: within one time budget, tried again
//! after not-leader answers, with the handle rebuilt after connection-class failures (a
//! `kurrentdb` client whose first connection failed answers `ConnectionClosed` forever).

use std::sync::PoisonError;
use std::time::Duration;

use kurrentdb::Client;

use super::Shared;
use super::errors::Fail;
use crate::store::StoreError;

/// How long one call of the port may take, retries included, before it is `Unavailable`.
pub const BUDGET: Duration = Duration::from_millis(2500);
/// How often a call is tried again after a not-leader answer, and the pause before each try.
const NOT_LEADER_RETRIES: u32 = 2;
const NOT_LEADER_PAUSE: Duration = Duration::from_millis(100);

/// A client handle, numbered so that only the first of several failed calls rebuilds it.
#[derive(Clone)]
pub(super) struct Connection {
    pub(super) client: Client,
    pub(super) generation: u64,
}

impl Shared {
    /// Runs `attempt` within [`BUDGET`], trying again after not-leader answers.
    pub(super) async fn run<T, F>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, Fail>>,
    {
        let generation = self.connection().generation;
        let tries = async {
            let mut retries = 0;
            loop {
                match attempt().await {
                    Ok(value) => return Ok(value),
                    Err(Fail::Store(error)) => return Err(error),
                    Err(Fail::NotLeader(_)) if retries < NOT_LEADER_RETRIES => {
                        retries += 1;
                        tokio::time::sleep(NOT_LEADER_PAUSE).await;
                    }
                    Err(Fail::NotLeader(leader)) => {
                        return Err(StoreError::Unavailable(format!(
                            "EventStoreDB at {}: the node is not the leader, and the leader it \
                             names ({leader}) did not take the {what}",
                            self.url
                        )));
                    }
                }
            }
        };
        match tokio::time::timeout(BUDGET, tries).await {
            Ok(result) => result,
            Err(_) => {
                self.reconnect(generation);
                Err(StoreError::Unavailable(format!(
                    "EventStoreDB at {} did not answer the {what} within {BUDGET:?}",
                    self.url
                )))
            }
        }
    }

    pub(super) fn connection(&self) -> Connection {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the client, unless another failed call already did since `generation`.
    pub(super) fn reconnect(&self, generation: u64) {
        let mut current = self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if current.generation != generation {
            return;
        }
        match Client::new(self.settings.clone()) {
            Ok(client) => {
                *current = Connection {
                    client,
                    generation: generation + 1,
                };
            }
            Err(error) => {
                tracing::warn!(%error, url = %self.url, "cannot rebuild the EventStoreDB client")
            }
        }
    }
}
