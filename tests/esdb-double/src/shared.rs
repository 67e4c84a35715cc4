//! What every service of one double shares: the storage, the fault switches, the projections it
//! was sent, and its own address (a not-leader answer names it as the leader).

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use tonic::Status;

use crate::errors;
use crate::faults::Faults;
use crate::services::projections::ProjectionRecord;
use crate::store::Store;

/// Whether a call is one a follower would refuse with `not-leader`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    AnyNode,
    Leader,
}

pub(crate) struct Shared {
    pub store: Store,
    pub faults: Faults,
    pub projections: Mutex<Vec<ProjectionRecord>>,
    pub addr: SocketAddr,
    /// Every call received, as `Service/Method`, in order.
    calls: Mutex<Vec<&'static str>>,
    /// The stream of every catch-up subscription opened, in order.
    subscriptions: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(addr: SocketAddr) -> Self {
        Shared {
            store: Store::default(),
            faults: Faults::default(),
            projections: Mutex::new(Vec::new()),
            addr,
            calls: Mutex::new(Vec::new()),
            subscriptions: Mutex::new(Vec::new()),
        }
    }

    /// Every call passes here first: it is recorded, then the delay, then the unavailable and
    /// not-leader switches apply.
    pub async fn admit(&self, call: &'static str, needs: Needs) -> Result<(), Status> {
        lock(&self.calls).push(call);
        let delay = self.faults.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.faults.unavailable() {
            return Err(errors::server_not_ready());
        }
        if needs == Needs::Leader && self.faults.not_leader() {
            return Err(errors::not_leader(
                &self.addr.ip().to_string(),
                self.addr.port(),
            ));
        }
        Ok(())
    }

    pub fn projections(&self) -> MutexGuard<'_, Vec<ProjectionRecord>> {
        lock(&self.projections)
    }

    pub fn subscribed(&self, stream: &str) {
        lock(&self.subscriptions).push(stream.to_owned());
    }

    pub fn subscriptions(&self) -> Vec<String> {
        lock(&self.subscriptions).clone()
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).iter().map(|c| (*c).to_owned()).collect()
    }
}

/// The double's locks guard plain data that no panic can leave half-changed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
