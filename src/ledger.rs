//! The single writer of one ledger stream: load, decide, append, retry on conflict.
//!
//! One task owns the state of the stream at revision N. Commands reach it through a channel;
//! whatever has queued up while the previous append was in flight is decided together, one after
//! another against the evolving state, and appended as one batch with expected revision N (one
//! transaction, one fsync). If another writer (a second replica, another process on the same
//! SQLite file) got there first, the append fails with a conflict: the task catches up from the
//! store and decides the whole batch again, a bounded number of times. The store's optimistic
//! concurrency check is the only lock.
//!
//! A command that comes with a delivery id (Slack's event id, a button's action id) gets a
//! deterministic event id (UUID v5), so a redelivery is recognised and appends nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use crate::domain::{
    Command, Event, Policy, PolicyCause, PolicyProposal, Refusal, State, decide, refused,
};
use crate::envelope::{self, Actor, Context, DecodeError, GENESIS_HASH};
use crate::snapshots::{self, WriterSnapshot};
use crate::store::{EventStore, ExpectedRevision, NewEvent, RecordedEvent, StoreError};

/// Namespace of deterministic event ids.
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6d0b_70b0_7e1e_4a5e_9d1e_0f4b_d0b0_0001);

/// The name of the ledger stream of an environment.
pub fn stream_name(environment: &str) -> String {
    format!("dobrobot-ledger-{environment}")
}

/// Where the writer gets the time from; tests use a fixed clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Utc::now))
    }

    pub fn from_fn(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

#[derive(Clone)]
pub struct Options {
    pub clock: Clock,
    /// The most commands decided and appended together.
    pub max_batch: usize,
    /// How often a batch is decided again after losing a race.
    pub max_attempts: usize,
    /// How long a store call may take before the command is answered "not recorded".
    pub store_timeout: Duration,
    /// Snapshot the state every so many events (`crate::snapshots`).
    pub snapshot_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Clock::system(),
            max_batch: 256,
            max_attempts: 32,
            store_timeout: Duration::from_secs(3),
            snapshot_every: crate::snapshots::EVERY,
        }
    }
}

/// A command with who sent it and how.
#[derive(Debug, Clone)]
pub struct Submission {
    pub command: Command,
    pub actor: Actor,
    /// The text as typed.
    pub text: String,
    /// A redelivering source's id for this delivery (`slack:Ev123`), for idempotence.
    pub delivery: Option<String>,
    pub correlation_id: Option<Uuid>,
}

/// What became of a command.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub revision: u64,
    pub result: Decision,
    /// The state right after the command's batch.
    pub state: Arc<State>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Accepted(Vec<Event>),
    Refused(Refusal),
    /// The same delivery was recorded before; nothing new was appended.
    AlreadyRecorded,
}

/// Why a command was not recorded. Nothing of it was written.
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the event store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("gave up after {0} conflicting writes by other writers")]
    Contention(usize),
    #[error("the ledger cannot be read: {0}")]
    Decode(#[from] DecodeError),
    #[error("the ledger has stopped")]
    Closed,
}

/// What the writer knows: the state at a revision.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: Arc<State>,
    pub revision: Option<u64>,
}

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Outcome, LedgerError>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    jobs: mpsc::Sender<Job>,
    snapshot: watch::Receiver<Snapshot>,
    policy: Arc<watch::Sender<Arc<Policy>>>,
    clock: Clock,
}

impl Ledger {
    /// Loads the stream and starts its writer.
    pub async fn open(
        store: Arc<dyn EventStore>,
        stream: String,
        policy: Arc<Policy>,
        options: Options,
    ) -> Result<Self, LedgerError> {
        let (policy, policy_rx) = watch::channel(policy);
        let clock = options.clock.clone();
        let mut writer = Writer {
            store,
            stream,
            policy: policy_rx,
            options,
            state: Arc::new(State::default()),
            revision: None,
            last_hash: GENESIS_HASH.to_string(),
            last_recorded_at: None,
            deliveries: HashSet::new(),
            snapshotted: None,
            snapshotting: None,
        };
        if let Some(snapshot) = snapshots::latest(&writer.store, &writer.stream, None, None).await {
            writer.state = Arc::new(snapshot.state);
            writer.revision = Some(snapshot.revision);
            writer.last_hash = snapshot.hash;
            writer.last_recorded_at = Some(snapshot.recorded_at);
            writer.deliveries = snapshot.deliveries.into_iter().collect();
            writer.snapshotted = Some(snapshot.revision);
        }
        let from = writer.revision;
        writer.catch_up().await?;
        info!(
            stream = %writer.stream,
            snapshot = ?from,
            revision = ?writer.revision,
            events_read = writer.revision.map_or(0, |r| r + 1) - from.map_or(0, |f| f + 1),
            "the writer loaded the ledger"
        );
        // Awaited here (not in the background as after a batch), so that even a process that
        // exits at once, like `chat`, leaves the snapshot for the next one.
        writer.snapshot_if_due();
        if let Some(write) = writer.snapshotting.take() {
            let _ = write.await;
        }
        let (snapshot_tx, snapshot) = watch::channel(writer.snapshot());
        let (jobs, rx) = mpsc::channel(4096);
        tokio::spawn(writer.run(rx, snapshot_tx));
        Ok(Ledger {
            jobs,
            snapshot,
            policy: Arc::new(policy),
            clock,
        })
    }

    /// The time by the writer's clock (a question about "now" asked through the bot).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The rules commands are decided by now: the policy last recorded in the ledger, or the
    /// one this ledger was opened with while the ledger holds none.
    pub fn policy(&self) -> Arc<Policy> {
        self.snapshot
            .borrow()
            .state
            .policy
            .clone()
            .unwrap_or_else(|| self.policy.borrow().clone())
    }

    /// Records `proposal` as the policy (`PolicyChanged`) if it differs from the one recorded
    /// last; the commands decided after it are decided by it. Recorded by the system actor.
    pub async fn adopt(&self, proposal: PolicyProposal) -> Result<Outcome, LedgerError> {
        let text = format!("policy ({})", cause_word(proposal.cause));
        self.policy.send_replace(Arc::new(proposal.policy.clone()));
        self.submit(Submission {
            command: Command::AdoptPolicy(Box::new(proposal)),
            actor: Actor {
                id: crate::domain::reminders::system_actor(),
                name: "dobrobot".to_string(),
                source: crate::envelope::Source::System,
            },
            text,
            delivery: None,
            correlation_id: None,
        })
        .await
    }

    /// Decides and records one command.
    pub async fn submit(&self, submission: Submission) -> Result<Outcome, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { submission, reply })
            .await
            .map_err(|_| LedgerError::Closed)?;
        answer.await.map_err(|_| LedgerError::Closed)?
    }

    /// The state as of the last batch this writer appended or caught up to.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }
}

struct Writer {
    store: Arc<dyn EventStore>,
    stream: String,
    policy: watch::Receiver<Arc<Policy>>,
    options: Options,
    /// Shared with the outcomes and the snapshot of the last batch; copied once per batch.
    state: Arc<State>,
    revision: Option<u64>,
    last_hash: String,
    /// When the event at `revision` was recorded.
    last_recorded_at: Option<DateTime<Utc>>,
    /// Deterministic ids (v5) already in the stream.
    deliveries: HashSet<Uuid>,
    /// The revision of the last snapshot written or loaded.
    snapshotted: Option<u64>,
    /// The last snapshot write started. Each waits for the one before, so that they are stored
    /// in the ledger's order (a question about a past point searches them by halves).
    snapshotting: Option<tokio::task::JoinHandle<()>>,
}

/// A batch decided against a copy of the state, ready to append.
struct Draft {
    /// The time every event of the batch is recorded at.
    recorded_at: DateTime<Utc>,
    state: State,
    events: Vec<NewEvent>,
    last_hash: String,
    decisions: Vec<(Decision, Option<u64>)>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, snapshot: watch::Sender<Snapshot>) {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < self.options.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let span = info_span!("append", stream = %self.stream, commands = jobs.len());
            let results = self.write(&jobs).instrument(span).await;
            snapshot.send_replace(self.snapshot());
            // In the background: the next batch does not wait for it.
            self.snapshot_if_due();
            match results {
                Ok(outcomes) => {
                    for (job, outcome) in jobs.into_iter().zip(outcomes) {
                        let _ = job.reply.send(Ok(outcome));
                    }
                }
                Err(error) => {
                    warn!(%error, "batch not recorded");
                    let message = error.to_string();
                    for job in jobs {
                        let _ = job.reply.send(Err(clone_error(&error, &message)));
                    }
                }
            }
        }
    }

    async fn write(&mut self, jobs: &[Job]) -> Result<Vec<Outcome>, LedgerError> {
        // After a lost race, a short random pause before catching up and trying again, longer
        // each time: writers that collided do not collide again in step.
        let mut pauses = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(1))
            .with_max_delay(Duration::from_millis(100))
            .with_jitter()
            .with_max_times(self.options.max_attempts)
            .build();
        for _ in 0..self.options.max_attempts {
            let draft = self.draft(jobs);
            let expected = match self.revision {
                None => ExpectedRevision::NoStream,
                Some(r) => ExpectedRevision::Exact(r),
            };
            if draft.events.is_empty() {
                return Ok(self.commit(draft, None));
            }
            let append = self
                .store
                .append(&self.stream, expected, draft.events.clone());
            let started = std::time::Instant::now();
            let appended = tokio::time::timeout(self.options.store_timeout, append).await;
            crate::metrics::METRICS.append(started.elapsed());
            match appended {
                Err(_) => return Err(LedgerError::Timeout(self.options.store_timeout)),
                Ok(Ok(result)) if result.written => {
                    return Ok(self.commit(draft, Some(result.first_revision)));
                }
                // Nothing written: another writer recorded these deliveries after our revision.
                // Learn them, so the draft answers `AlreadyRecorded` and chains to stored hashes.
                Ok(Ok(_)) | Ok(Err(StoreError::WrongExpectedRevision { .. })) => {
                    if let Some(pause) = pauses.next() {
                        tokio::time::sleep(pause).await;
                    }
                    self.catch_up().await?
                }
                // Some of the batch's deliveries were recorded by another writer, some not.
                Ok(Err(error @ StoreError::PartialDuplicate { .. })) => {
                    let before = self.revision;
                    self.catch_up().await?;
                    if self.revision == before {
                        return Err(error.into());
                    }
                }
                Ok(Err(error)) => return Err(error.into()),
            }
        }
        Err(LedgerError::Contention(self.options.max_attempts))
    }

    /// Decides every job against the evolving state.
    fn draft(&self, jobs: &[Job]) -> Draft {
        // The ledger's time never goes back, whatever the clock of the process that appends:
        // questions "since" and "as of" a time read the ledger as ordered by time.
        let now = envelope::truncate_to_millis(self.options.clock.now())
            .max(self.last_recorded_at.unwrap_or(DateTime::<Utc>::MIN_UTC));
        let mut draft = Draft {
            recorded_at: now,
            state: State::clone(&self.state),
            events: Vec::new(),
            last_hash: self.last_hash.clone(),
            decisions: Vec::with_capacity(jobs.len()),
        };
        let mut batch_deliveries = HashSet::new();
        // Each command is decided by the policy recorded before it (a batch may record one).
        let fallback = self.policy.borrow().clone();
        for job in jobs {
            let policy = draft
                .state
                .policy
                .clone()
                .unwrap_or_else(|| fallback.clone());
            let sub = &job.submission;
            let delivery_id = sub
                .delivery
                .as_ref()
                .map(|d| Uuid::new_v5(&DELIVERY_NAMESPACE, d.as_bytes()));
            if let Some(id) = delivery_id
                && (self.deliveries.contains(&id) || !batch_deliveries.insert(id))
            {
                draft.decisions.push((Decision::AlreadyRecorded, None));
                continue;
            }
            let span = info_span!(
                "command",
                ticket = sub.command.ticket().map(|t| t.as_str()),
                actor = %sub.actor.id,
                command = sub.command.verb()
            );
            let _entered = span.enter();
            let (events, decision) =
                match decide(&draft.state, &sub.actor.id, &sub.command, &policy, now) {
                    Ok(events) => (events.clone(), Decision::Accepted(events)),
                    // A reminder's refusal only says it is no longer due: nothing to record.
                    Err(refusal) if !sub.command.records_refusal() => {
                        (Vec::new(), Decision::Refused(refusal))
                    }
                    Err(refusal) => (
                        vec![refused(&sub.actor.id, &sub.command, refusal.clone())],
                        Decision::Refused(refusal),
                    ),
                };
            let context = Context {
                actor: sub.actor.clone(),
                correlation_id: sub.correlation_id.unwrap_or_else(Uuid::now_v7),
                causation_id: None,
                command: sub.text.clone(),
                recorded_at: now,
            };
            let offset = draft.events.len() as u64;
            for (i, event) in events.iter().enumerate() {
                let id = match delivery_id {
                    Some(first) if i == 0 => first,
                    Some(first) => Uuid::new_v5(&first, &(i as u64).to_be_bytes()),
                    None => Uuid::now_v7(),
                };
                let (new, hash) = envelope::seal(event, id, &context, &draft.last_hash);
                draft.last_hash = hash;
                draft.events.push(new);
                draft.state.evolve(event, now);
            }
            let recorded = !events.is_empty();
            draft.decisions.push((decision, recorded.then_some(offset)));
        }
        draft
    }

    fn commit(&mut self, draft: Draft, first_revision: Option<u64>) -> Vec<Outcome> {
        let base = first_revision.unwrap_or(0);
        if first_revision.is_some() {
            self.last_recorded_at = Some(draft.recorded_at);
        }
        for event in &draft.events {
            if event.id.get_version_num() == 5 {
                self.deliveries.insert(event.id);
            }
        }
        if let Some(first) = first_revision {
            self.revision = Some(first + draft.events.len() as u64 - 1);
        }
        self.state = Arc::new(draft.state);
        self.last_hash = draft.last_hash;
        let state = self.state.clone();
        let current = self.revision.unwrap_or(0);
        draft
            .decisions
            .into_iter()
            .map(|(result, offset)| Outcome {
                revision: offset.map_or(current, |o| base + o),
                result,
                state: state.clone(),
            })
            .collect()
    }

    /// Reads what other writers appended since our revision.
    async fn catch_up(&mut self) -> Result<(), LedgerError> {
        let (store, stream) = (Arc::clone(&self.store), self.stream.clone());
        let from = self.revision.map_or(0, |r| r + 1);
        let mut pages = store.read_pages(&stream, from);
        let timeout = self.options.store_timeout;
        while let Some(page) = tokio::time::timeout(timeout, pages.try_next())
            .await
            .map_err(|_| LedgerError::Timeout(timeout))??
        {
            for recorded in &page {
                self.apply(recorded)?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), LedgerError> {
        let decoded = envelope::decode(recorded)?;
        Arc::make_mut(&mut self.state).evolve(&decoded.event, decoded.metadata.recorded_at);
        if recorded.id.get_version_num() == 5 {
            self.deliveries.insert(recorded.id);
        }
        self.last_hash = decoded.metadata.hash;
        self.last_recorded_at = Some(decoded.metadata.recorded_at);
        self.revision = Some(recorded.revision);
        Ok(())
    }

    /// Starts writing a snapshot when `snapshot_every` events have been added since the last
    /// one, after the write before it (`snapshotting`). A snapshot that is not written is only
    /// a slower next start.
    fn snapshot_if_due(&mut self) {
        let (Some(revision), Some(recorded_at)) = (self.revision, self.last_recorded_at) else {
            return;
        };
        let since = revision + 1 - self.snapshotted.map_or(0, |s| s + 1);
        if since < self.options.snapshot_every.max(1) {
            return;
        }
        self.snapshotted = Some(revision);
        let snapshot = WriterSnapshot::new(
            revision,
            self.last_hash.clone(),
            recorded_at,
            State::clone(&self.state),
            &self.deliveries,
        );
        let (store, stream) = (self.store.clone(), self.stream.clone());
        let before = self.snapshotting.take();
        self.snapshotting = Some(tokio::spawn(async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            match snapshots::write(&store, &stream, &snapshot).await {
                Ok(()) => info!(%stream, revision, "snapshot written"),
                Err(error) => warn!(%error, %stream, revision, "snapshot not written"),
            }
        }));
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state.clone(),
            revision: self.revision,
        }
    }
}

fn cause_word(cause: PolicyCause) -> &'static str {
    match cause {
        PolicyCause::Start => "start",
        PolicyCause::Reload => "reload",
        PolicyCause::Directory => "directory",
    }
}

/// Every command of a failed batch gets the same error.
fn clone_error(error: &LedgerError, message: &str) -> LedgerError {
    match error {
        LedgerError::Store(e) => LedgerError::Store(e.clone()),
        LedgerError::Timeout(d) => LedgerError::Timeout(*d),
        LedgerError::Contention(n) => LedgerError::Contention(*n),
        LedgerError::Closed => LedgerError::Closed,
        LedgerError::Decode(_) => LedgerError::Store(StoreError::Backend(message.to_string())),
    }
}
