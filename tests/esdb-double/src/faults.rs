//! Fault switches, shared by every call the double serves. Tests flip them while clients are
//! connected to exercise retry, reconnect and resume paths.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Why live subscriptions are told to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// End with an error status, so that clients must resubscribe.
    Dropped,
    /// The server is stopping; the connection itself goes away.
    Stopping,
}

/// The switches. Every setter takes effect for the next call (and `drop_subscriptions` at once).
pub struct Faults {
    unavailable: AtomicBool,
    not_leader: AtomicBool,
    delay_ms: AtomicU64,
    supported_methods_unimplemented: AtomicBool,
    endings: watch::Sender<(u64, Ending)>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            unavailable: AtomicBool::new(false),
            not_leader: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            supported_methods_unimplemented: AtomicBool::new(false),
            endings: watch::channel((0, Ending::Dropped)).0,
        }
    }
}

impl Faults {
    /// Answer every call with `UNAVAILABLE` ("Server Is Not Ready"), as a node that is not ready,
    /// and end the live subscriptions. The connection stays up; `Double::stop` closes the port.
    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
        if on {
            self.end_subscriptions(Ending::Dropped);
        }
    }

    /// Answer every Streams and Projections call as a follower answers a request that needs the
    /// leader: `NOT_FOUND` with `exception: not-leader` and the leader's host and port (this same
    /// double), so clients reconnect to it. `ServerFeatures` still answers. Live subscriptions
    /// keep running.
    pub fn set_not_leader(&self, on: bool) {
        self.not_leader.store(on, Ordering::SeqCst);
    }

    /// Sleep this long before answering each call (zero: no delay). A client that gives up
    /// meanwhile cancels the call, and a cancelled append writes nothing.
    pub fn set_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// End every live subscription now with `UNAVAILABLE`, so clients must resubscribe.
    /// Subscriptions started afterwards are not affected.
    pub fn drop_subscriptions(&self) {
        self.end_subscriptions(Ending::Dropped);
    }

    /// Answer `ServerFeatures.GetSupportedMethods` with `UNIMPLEMENTED`, as servers before 21.10 do.
    pub fn set_supported_methods_unimplemented(&self, on: bool) {
        self.supported_methods_unimplemented
            .store(on, Ordering::SeqCst);
    }

    pub(crate) fn unavailable(&self) -> bool {
        self.unavailable.load(Ordering::SeqCst)
    }

    pub(crate) fn not_leader(&self) -> bool {
        self.not_leader.load(Ordering::SeqCst)
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn supported_methods_unimplemented(&self) -> bool {
        self.supported_methods_unimplemented.load(Ordering::SeqCst)
    }

    /// Tells live subscriptions to end; each holds a receiver taken when it started.
    pub(crate) fn end_subscriptions(&self, why: Ending) {
        self.endings.send_modify(|(generation, ending)| {
            *generation += 1;
            *ending = why;
        });
    }

    pub(crate) fn endings(&self) -> watch::Receiver<(u64, Ending)> {
        self.endings.subscribe()
    }
}
