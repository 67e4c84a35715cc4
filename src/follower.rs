//! The one follower of a process: the only subscription it holds to the ledger stream. Every
//! event, in order, goes into every read model: the persisted ones (`crate::models`: the
//! history and the deployments, with the live state and the waitlist as of their checkpoint)
//! and the small ones it also keeps in memory (the live state with its queue and locks, the
//! waitlist). Every front learns from it that the ledger moved on: the Slack front redraws
//! release messages, the HTTP API answers from the models, queries in chat read the same ones.
//!
//! At start it catches the persisted models up from their checkpoint (all of the ledger only
//! the first time, or after the file was thrown away), then subscribes after it. The memory
//! models sit behind one lock, held only while they are replaced or a question answered, never
//! across an `.await`; a `watch` of the follower's progress wakes whoever waits for a revision.
//! A front never folds the ledger itself: what it shows is read here, and what it must do once
//! per event it tracks with its own checkpoint against the revisions seen here.
//!
//! The catch-up is logged as a summary (and progress every few seconds of a long one); events
//! after it are logged one line each, as the service's record of what happened.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::domain::State;
use crate::envelope::{self, Recorded};
use crate::models::{ModelsError, StoredModels};
use crate::projections::{Live, Projection, Waitlist};
use crate::store::{EventStore, SubscriptionItem};

/// How many of the latest states are kept, for fronts that show a step as it was right after it
/// (the reply to `accept` says what comes next at that moment, not later).
const RECENT_STATES: usize = 256;

/// The latest states, each with the revision it is the state right after.
type Recent = Arc<Mutex<VecDeque<(u64, Arc<State>)>>>;

/// The models the follower keeps in memory as well as in the file: small, and asked at every
/// command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadModels {
    pub live: Live,
    pub waitlist: Waitlist,
}

impl ReadModels {
    /// The last revision applied.
    pub fn revision(&self) -> Option<u64> {
        self.live.revision
    }
}

impl Projection for ReadModels {
    fn apply(&mut self, recorded: &Recorded) {
        self.live.apply(recorded);
        Projection::apply(&mut self.waitlist, recorded);
    }
}

/// How far the follower has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last revision applied to the read models.
    pub revision: Option<u64>,
    /// Whether it has read the whole ledger once (live since).
    pub caught_up: bool,
    /// The ledger could not be decoded: the follower stopped.
    pub failed: bool,
}

/// A cheap read handle on the follower's models; clone it freely.
#[derive(Clone)]
pub struct Followed {
    models: Arc<RwLock<ReadModels>>,
    stored: Arc<StoredModels>,
    /// Starts a follower that waits to be needed (`chat`'s, at its first question).
    wake: Arc<tokio::sync::Notify>,
    recent: Recent,
    progress: watch::Receiver<Progress>,
}

impl Followed {
    /// Answers from the models as they are now.
    pub fn read<R>(&self, f: impl FnOnce(&ReadModels) -> R) -> R {
        f(&self.models.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The persisted models, for the questions answered from them (history, deployments).
    pub fn stored(&self) -> &Arc<StoredModels> {
        &self.stored
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// A receiver that wakes whenever the follower moves on.
    pub fn changes(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// The state right after `revision`, when it is among the latest the follower applied live.
    pub fn state_at(&self, revision: u64) -> Option<Arc<State>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .rev()
            .find(|(r, _)| *r == revision)
            .map(|(_, s)| s.clone())
    }

    /// Waits (at most `timeout`) until the models include `revision`; whether they do. A
    /// follower that waits to be needed starts here.
    pub async fn reached(&self, revision: Option<u64>, timeout: Duration) -> bool {
        self.wake.notify_one();
        let Some(wanted) = revision else {
            return true;
        };
        let mut changes = self.progress.clone();
        let wait = changes.wait_for(|p| p.failed || p.revision.is_some_and(|r| r >= wanted));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(progress)) => !progress.failed,
            _ => false,
        }
    }
}

/// The running follower.
pub struct Follower {
    task: JoinHandle<()>,
    followed: Followed,
}

impl Follower {
    /// Catches `stored` up with `stream` and keeps it (and the memory models) current until
    /// stopped. After a dropped subscription it subscribes again after the last event applied,
    /// so nothing is missed or applied twice. Unless `eager`, it starts only when a question
    /// first waits for it (`Followed::reached`): a `chat` that only records a command never
    /// reads the ledger for its models.
    pub fn start(
        store: Arc<dyn EventStore>,
        stream: String,
        stored: Arc<StoredModels>,
        eager: bool,
    ) -> Follower {
        let models = Arc::new(RwLock::new(ReadModels::default()));
        let recent = Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_STATES)));
        let (progress, receiver) = watch::channel(Progress::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let needed = wake.clone();
        let following = follow(
            store,
            stream,
            stored.clone(),
            models.clone(),
            recent.clone(),
            progress,
        );
        let task = tokio::spawn(async move {
            if !eager {
                needed.notified().await;
            }
            following.await
        });
        Follower {
            task,
            followed: Followed {
                models,
                stored,
                wake,
                recent,
                progress: receiver,
            },
        }
    }

    pub fn followed(&self) -> &Followed {
        &self.followed
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    store: Arc<dyn EventStore>,
    stream: String,
    stored: Arc<StoredModels>,
    models: Arc<RwLock<ReadModels>>,
    recent: Recent,
    progress: watch::Sender<Progress>,
) {
    let started = Instant::now();
    let mut caught_up = false;
    let replace = |now: ReadModels| {
        let revision = now.live.revision;
        *models.write().unwrap_or_else(|e| e.into_inner()) = now;
        revision
    };
    loop {
        let applied = match stored.catch_up(&store, &stream).await {
            Ok(caught) => caught.applied,
            Err(ModelsError::Decode(error)) => {
                error!(%error, "the ledger cannot be read; the follower stops");
                progress.send_modify(|p| p.failed = true);
                return;
            }
            Err(error) => {
                warn!(%error, %stream, "cannot bring the read models up to the ledger; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut last = match stored.held() {
            Ok(held) => replace(held),
            Err(error) => {
                warn!(%error, "cannot read the read models; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut seen = last;
        let mut subscription = match store.subscribe(&stream, last).await {
            Ok(s) => s,
            Err(error) => {
                warn!(%error, %stream, "cannot follow the ledger; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Only now: whoever waits for this revision finds the follower following.
        progress.send_replace(Progress {
            revision: last,
            caught_up,
            failed: false,
        });
        while let Some(item) = subscription.next().await {
            match item {
                Ok(SubscriptionItem::CaughtUp) => {
                    if !caught_up {
                        info!(
                            %stream,
                            revision = ?last,
                            applied,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "projections caught up"
                        );
                    }
                    caught_up = true;
                    progress.send_replace(Progress {
                        revision: last,
                        caught_up,
                        failed: false,
                    });
                }
                Ok(SubscriptionItem::Event(raw)) => {
                    if seen.is_some_and(|seen| raw.revision <= seen) {
                        continue;
                    }
                    let recorded = match envelope::decode(&raw) {
                        Ok(recorded) => recorded,
                        Err(error) => {
                            error!(%error, revision = raw.revision, "the ledger cannot be read; the follower stops");
                            progress.send_modify(|p| p.failed = true);
                            return;
                        }
                    };
                    let (file, name) = (stored.clone(), stream.clone());
                    let batch = vec![recorded.clone()];
                    let held = models.read().unwrap_or_else(|e| e.into_inner()).clone();
                    let now = match tokio::task::spawn_blocking(move || {
                        file.apply_from(&name, &batch, Some(held))
                    })
                    .await
                    {
                        Ok(Ok(now)) => now,
                        Ok(Err(error)) => {
                            // Rebuilt or replaced under us: catch up from its checkpoint again.
                            warn!(%error, "the read models moved; catching up again");
                            break;
                        }
                        // The runtime is shutting down.
                        Err(error) if error.is_cancelled() => return,
                        Err(error) => {
                            error!(%error, "applying an event to the read models failed");
                            break;
                        }
                    };
                    // Another process sharing the file may have applied it and more already.
                    let state = (caught_up && now.live.revision == Some(recorded.revision))
                        .then(|| Arc::new(now.live.state.clone()));
                    seen = Some(recorded.revision);
                    last = replace(now);
                    if let Some(state) = state {
                        let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
                        if recent.len() == RECENT_STATES {
                            recent.pop_front();
                        }
                        recent.push_back((recorded.revision, state));
                    }
                    if caught_up {
                        info!(
                            revision = recorded.revision,
                            event = recorded.event.type_name(),
                            ticket = recorded.event.ticket().map(|t| t.as_str()),
                            actor = %recorded.metadata.actor.id,
                            "recorded"
                        );
                    }
                    progress.send_replace(Progress {
                        revision: last,
                        caught_up,
                        failed: false,
                    });
                }
                Err(error) => {
                    warn!(%error, "the ledger subscription dropped; subscribing again");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
