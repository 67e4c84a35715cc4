//! Copies a ledger stream from one event store to another, e.g. from the embedded SQLite file to
//! EventStoreDB, so that the target is the same ledger: the same event ids at the same revisions,
//! with the same types and the same data and metadata bytes. The hash chain covers exactly those
//! bytes, so `verify` passes on the target as it did on the source.
//!
//! The copy is safe to interrupt and to repeat:
//!
//! - The source is verified first; a broken ledger is refused before anything is written.
//! - A target that already holds a prefix of the source (the same events at the same revisions,
//!   left by an interrupted or earlier run) is resumed after that prefix; a target that holds
//!   anything else is refused, naming the first revision where it differs, before anything is
//!   written. A second run over a complete target appends nothing.
//! - Each batch is appended with the expected revision it must follow, so the target's revision
//!   equals the source's before every batch; a concurrent writer on the target makes the copy
//!   stop with the store's conflict rather than interleave.
//! - Every copied event is checked against the hash chain as it is copied, and the chain must end
//!   at the hash `verify` saw: what lands in the target is what was verified, even if the source
//!   is written to while the copy runs (events appended after the verification are left for the
//!   next run). The target is verified at the end.
//!
//! The source is read a page at a time (a million-event ledger is never in memory at once), and
//! batches are bounded in count and in bytes: EventStoreDB refuses an append larger than its
//! `MaxAppendSize` (1 MiB by default).

use std::sync::Arc;

use futures::TryStreamExt;
use thiserror::Error;
use tracing::{Instrument, info, info_span};
use uuid::Uuid;

use crate::envelope::{self, ChainError, GENESIS_HASH};
use crate::store::{
    Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent, StoreError,
};
use crate::telemetry::Progress;
use crate::verify::{self, BadEvent, VerifyError};

/// How much the copy reads and writes at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Events read from the source at a time while copying. (The target is compared page by
    /// page in the store's own page size, `store::READ_PAGE`.)
    pub page: usize,
    /// The most events in one append.
    pub batch_events: usize,
    /// The most data and metadata bytes in one append (a single larger event goes alone).
    pub batch_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            page: 1000,
            batch_events: 500,
            batch_bytes: 512 * 1024,
        }
    }
}

/// What a migration found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub stream: String,
    /// Events in the source when it was verified; the target holds exactly these now.
    pub events: u64,
    /// Events the target already held (an earlier or interrupted run).
    pub already_present: u64,
    /// Events this run appended.
    pub copied: u64,
    /// Appends this run made.
    pub batches: u64,
    /// The hash of the last event, the same in both stores.
    pub last_hash: String,
}

/// Why a migration stopped. The refusals (see `is_refusal`) come before anything is written; a
/// failed append writes nothing of its batch, and the batches before it stay (a later run
/// resumes after them).
#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("the source store: {0}")]
    Source(StoreError),
    #[error("the target store: {0}")]
    Target(StoreError),
    #[error("the source ledger is broken, so nothing was copied: {0}")]
    SourceBroken(Box<BadEvent>),
    #[error(
        "the target's stream {stream} diverges from the source at revision {revision}: the source has event {source_id} there, the target {target_id}; nothing was written"
    )]
    Diverged {
        stream: String,
        revision: u64,
        source_id: Uuid,
        target_id: Uuid,
    },
    #[error(
        "the target's stream {stream} diverges from the source at revision {revision}: event {id} is in both, with different content; nothing was written"
    )]
    Altered {
        stream: String,
        revision: u64,
        id: Uuid,
    },
    #[error(
        "the target's stream {stream} diverges from the source at revision {revision}: the target has event {target_id} there, past the source's end ({source_events} events); nothing was written"
    )]
    TargetAhead {
        stream: String,
        revision: u64,
        target_id: Uuid,
        source_events: u64,
    },
    #[error("the source changed while it was being copied, at revision {revision}: {problem}")]
    SourceChanged { revision: u64, problem: String },
    #[error(
        "the target put a batch at revisions {actual_first}..={actual_last}, not at the source's {first}..={last}"
    )]
    Misplaced {
        first: u64,
        last: u64,
        actual_first: u64,
        actual_last: u64,
    },
    #[error("after the copy, verify fails on the target: {0}")]
    TargetBroken(Box<BadEvent>),
    #[error(
        "after the copy, the target holds {events} events ending with hash {last_hash}, not the source's {source_events} ending with {source_hash}"
    )]
    TargetMismatch {
        events: u64,
        last_hash: String,
        source_events: u64,
        source_hash: String,
    },
}

impl MigrateError {
    /// A refusal is the migration declining, before it writes anything, to copy this ledger to
    /// this target: a broken source, or a target that holds something else. The other errors are
    /// failures: a store that failed, or a copy that did not come out whole.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            MigrateError::SourceBroken(_)
                | MigrateError::Diverged { .. }
                | MigrateError::Altered { .. }
                | MigrateError::TargetAhead { .. }
        )
    }
}

/// Copies `stream` from `source` to `target`; see the module's documentation.
pub async fn migrate(
    source: &Arc<dyn EventStore>,
    target: &Arc<dyn EventStore>,
    stream: &str,
    options: &Options,
) -> Result<Report, MigrateError> {
    let span = info_span!("migrate", stream);
    Copy {
        source,
        target,
        stream,
        options: Options {
            page: options.page.max(1),
            batch_events: options.batch_events.max(1),
            ..*options
        },
    }
    .run()
    .instrument(span)
    .await
}

struct Copy<'a> {
    source: &'a Arc<dyn EventStore>,
    target: &'a Arc<dyn EventStore>,
    stream: &'a str,
    options: Options,
}

impl Copy<'_> {
    async fn run(&self) -> Result<Report, MigrateError> {
        let verified = verify::verify_ledger(self.source, self.stream)
            .await
            .map_err(|e| match e {
                VerifyError::Store(e) => MigrateError::Source(e),
                VerifyError::Bad(bad) => MigrateError::SourceBroken(bad),
                VerifyError::BadSnapshot { .. } => unreachable!("the ledger alone is verified"),
            })?;
        let events = verified.events;
        info!(events, "the source verifies");

        let (present, hash) = self.compare_target(events).await?;
        if present == events {
            info!(
                events,
                "the target already holds every event: nothing to copy"
            );
        } else {
            info!(
                already_present = present,
                to_copy = events - present,
                "copying"
            );
        }
        let (copied, batches, hash) = self.copy_from(present, events, hash).await?;
        if hash != verified.last_hash {
            return Err(MigrateError::SourceChanged {
                revision: events.saturating_sub(1),
                problem: format!(
                    "the chain ends with hash {hash}, but verify saw {}",
                    verified.last_hash
                ),
            });
        }

        let on_target = verify::verify_ledger(self.target, self.stream)
            .await
            .map_err(|e| match e {
                VerifyError::Store(e) => MigrateError::Target(e),
                VerifyError::Bad(bad) => MigrateError::TargetBroken(bad),
                VerifyError::BadSnapshot { .. } => unreachable!("the ledger alone is verified"),
            })?;
        if on_target != verified {
            return Err(MigrateError::TargetMismatch {
                events: on_target.events,
                last_hash: on_target.last_hash,
                source_events: verified.events,
                source_hash: verified.last_hash,
            });
        }
        info!(events, copied, batches, "the target verifies");
        Ok(Report {
            stream: self.stream.to_string(),
            events,
            already_present: present,
            copied,
            batches,
            last_hash: verified.last_hash,
        })
    }

    /// Checks that the target holds a prefix of the source's first `events` events; returns its
    /// length and the hash of its last event.
    async fn compare_target(&self, events: u64) -> Result<(u64, String), MigrateError> {
        let mut next = 0u64;
        let mut hash = GENESIS_HASH.to_string();
        let mut pages = self.target.read_pages(self.stream, 0);
        while let Some(theirs) = pages.try_next().await.map_err(MigrateError::Target)? {
            let Some(first) = theirs.first() else { break };
            if first.revision != next {
                return Err(MigrateError::Target(StoreError::Backend(format!(
                    "stream {} reads revision {} where {next} was expected",
                    self.stream, first.revision
                ))));
            }
            let want = theirs.len().min(usize_of(events.saturating_sub(next)));
            let ours = if want == 0 {
                Vec::new()
            } else {
                self.read_source(next, want).await?
            };
            for (i, target_event) in theirs.iter().enumerate() {
                let Some(source_event) = ours.get(i) else {
                    return Err(MigrateError::TargetAhead {
                        stream: self.stream.to_string(),
                        revision: next,
                        target_id: target_event.id,
                        source_events: events,
                    });
                };
                hash = self.check_source(source_event, next, &hash)?;
                if source_event.id != target_event.id {
                    return Err(MigrateError::Diverged {
                        stream: self.stream.to_string(),
                        revision: next,
                        source_id: source_event.id,
                        target_id: target_event.id,
                    });
                }
                if !same_content(source_event, target_event) {
                    return Err(MigrateError::Altered {
                        stream: self.stream.to_string(),
                        revision: next,
                        id: target_event.id,
                    });
                }
                next += 1;
            }
        }
        Ok((next, hash))
    }

    /// Appends the source's events `from..events` to the target; returns how many were written,
    /// in how many appends, and the hash of the last event.
    async fn copy_from(
        &self,
        from: u64,
        events: u64,
        mut hash: String,
    ) -> Result<(u64, u64, String), MigrateError> {
        let mut progress = Progress::new("copied", from, events);
        let (mut copied, mut batches) = (0u64, 0u64);
        let mut next = from;
        while next < events {
            let page = self
                .read_source(next, self.options.page.min(usize_of(events - next)))
                .await?;
            let mut batch: Vec<NewEvent> = Vec::new();
            let mut bytes = 0usize;
            let mut first = next;
            for recorded in page {
                hash = self.check_source(&recorded, next, &hash)?;
                let size = recorded.data.len() + recorded.metadata.len();
                if !batch.is_empty()
                    && (batch.len() == self.options.batch_events
                        || bytes + size > self.options.batch_bytes)
                {
                    copied += self.append(first, std::mem::take(&mut batch)).await?;
                    batches += 1;
                    progress.report(next);
                    first = next;
                    bytes = 0;
                }
                bytes += size;
                batch.push(NewEvent {
                    id: recorded.id,
                    event_type: recorded.event_type,
                    data: recorded.data,
                    metadata: recorded.metadata,
                });
                next += 1;
            }
            if !batch.is_empty() {
                copied += self.append(first, batch).await?;
                batches += 1;
                progress.report(next);
            }
        }
        Ok((copied, batches, hash))
    }

    /// Appends `batch`, which holds the source's events from revision `first`, at the same
    /// revisions in the target; returns how many were written (0 if another run got there first).
    async fn append(&self, first: u64, batch: Vec<NewEvent>) -> Result<u64, MigrateError> {
        let count = batch.len() as u64;
        let last = first + count - 1;
        let expected = match first {
            0 => ExpectedRevision::NoStream,
            n => ExpectedRevision::Exact(n - 1),
        };
        let result = self
            .target
            .append(self.stream, expected, batch)
            .await
            .map_err(MigrateError::Target)?;
        if (result.first_revision, result.last_revision) != (first, last) {
            return Err(MigrateError::Misplaced {
                first,
                last,
                actual_first: result.first_revision,
                actual_last: result.last_revision,
            });
        }
        Ok(if result.written { count } else { 0 })
    }

    async fn read_source(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, MigrateError> {
        let page = self
            .source
            .read(
                self.stream,
                Direction::Forwards,
                ReadFrom::Revision(from),
                max,
            )
            .await
            .map_err(MigrateError::Source)?;
        if page.len() < max {
            return Err(MigrateError::SourceChanged {
                revision: from + page.len() as u64,
                problem: "the event is no longer there".to_string(),
            });
        }
        Ok(page)
    }

    /// The event's hash, if it is at `revision` and chains to `prev_hash`.
    fn check_source(
        &self,
        recorded: &RecordedEvent,
        revision: u64,
        prev_hash: &str,
    ) -> Result<String, MigrateError> {
        let changed = |problem: String| MigrateError::SourceChanged { revision, problem };
        if recorded.revision != revision {
            return Err(changed(format!(
                "revision {} was read in its place",
                recorded.revision
            )));
        }
        envelope::check_link(recorded, prev_hash)
            .map_err(|e: ChainError| changed(format!("hash chain broken: {e}")))
    }
}

fn same_content(a: &RecordedEvent, b: &RecordedEvent) -> bool {
    a.event_type == b.event_type && a.data == b.data && a.metadata == b.metadata
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
