//! A wire-level stand-in for EventStoreDB/KurrentDB, for tests: a gRPC server on 127.0.0.1 that
//! answers what the official clients call, with the server's documented semantics, from stubs
//! generated out of the `.proto` files the `kurrentdb` client ships (see `build.rs`).
//!
//! What it serves (and `ServerFeatures` lists): `Streams` — appends with any / no-stream /
//! stream-exists / exact expected revisions, wrong expected version answered inside the append
//! response, idempotent retries by event id, `BatchAppend`, reads of a stream or `$all` in both
//! directions with a count, `stream_not_found`, catch-up subscriptions to a stream (confirmation,
//! history, `caught_up`, live), soft delete and tombstone; `Projections` management (stored, never
//! run); `Gossip` (one node, the leader); `ServerFeatures` (as version [`SERVER_VERSION`]).
//! Errors carry the server's `exception` trailers, and call deadlines (`grpc-timeout`) are
//! enforced by the server, as the real one does. [`Faults`] switches make it unavailable, a
//! follower, slow, or drop subscriptions; [`Double::stop`] and [`Double::restart`] take the port
//! away and give it back with the data kept; [`Double::calls`] tells what clients asked.
//!
//! It is test code: it keeps everything in memory, has no authentication, no system streams, no
//! `$all` subscriptions or filtered `$all` reads, and serves plain HTTP/2 (`tls=false`).

// tonic's handlers answer `Result<_, Status>`; the helpers they call return the same.
#![allow(clippy::result_large_err)]

mod convert;
mod deadline;
mod errors;
mod faults;
mod proto;
mod quick_ack;
mod server;
mod services;
mod shared;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use faults::Faults;
pub use services::projections::ProjectionRecord;
pub use services::server_features::SERVER_VERSION;
pub use store::StoredEvent;

use faults::Ending;
use shared::Shared;

/// A running double. Dropping it stops the server.
pub struct Double {
    shared: Arc<Shared>,
    running: Option<server::Running>,
}

impl Double {
    /// Starts a double on 127.0.0.1 and a free port, with empty storage.
    ///
    /// # Panics
    /// If no port can be bound on 127.0.0.1 (the test machine is broken).
    pub async fn start() -> Double {
        let listener = server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind 127.0.0.1 for the EventStoreDB double");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared::new(addr));
        let running = server::serve(listener, services::routes(&shared));
        Double {
            shared,
            running: Some(running),
        }
    }

    /// The connection string for clients: plain HTTP/2 (`tls=false`), and no wait before the
    /// first connection (`discoveryInterval=0`; the Rust client otherwise sleeps 500 ms before
    /// connecting to a single node).
    pub fn url(&self) -> String {
        format!("esdb://{}?tls=false&discoveryInterval=0", self.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Stops serving: closes the port and drops every connection (live subscriptions end with
    /// the connection). Storage is kept. Does nothing if already stopped.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.shared.faults.end_subscriptions(Ending::Stopping);
            running.stop().await;
        }
    }

    /// Serves again on the same port with the same storage. Does nothing if already serving.
    ///
    /// # Panics
    /// If the port cannot be bound again within a few seconds (another process took it).
    pub async fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        let mut attempts = 0;
        let listener = loop {
            match server::bind(self.shared.addr) {
                Ok(listener) => break listener,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    tracing::debug!(error = %e, "esdb double: port not free yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!(
                    "rebind {} for the EventStoreDB double: {e}",
                    self.shared.addr
                ),
            }
        };
        self.running = Some(server::serve(listener, services::routes(&self.shared)));
    }

    /// The projections created (and updated since), in creation order.
    pub fn projections(&self) -> Vec<ProjectionRecord> {
        self.shared.projections().clone()
    }

    /// Every event stored in `stream`, in revision order (empty if there is no such stream).
    pub fn events(&self, stream: &str) -> Vec<StoredEvent> {
        self.shared.store.events(stream)
    }

    /// The stream of every catch-up subscription a client opened, in order (a resubscription
    /// after a drop counts again).
    pub fn subscriptions(&self) -> Vec<String> {
        self.shared.subscriptions()
    }

    /// Every call received so far, as `Service/Method` (`"Streams/Append"`), in arrival order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.calls()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        // The listener and connections go with `running`; subscriptions are told to stop too.
        self.shared.faults.end_subscriptions(Ending::Stopping);
    }
}
