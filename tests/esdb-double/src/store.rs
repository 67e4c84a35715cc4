//! The double's storage: streams of recorded events in one global log, and the write rules.
//!
//! The rules follow EventStoreDB's commit check (`IndexWriter.CheckCommit` in the server): an
//! expected revision is checked against the stream's last revision; a write whose event ids are
//! already stored at the positions it would take is *idempotent* and answered with the original
//! revision and position, nothing new written; a write that matches only partly ("corrupted
//! idempotency") is a wrong expected version. With `any` / `stream_exists` the server looks the ids
//! up wherever they are in the stream (best effort in the server, exact here); with an exact or
//! `no_stream` expectation it compares the ids at the revisions after the expected one.
//!
//! Everything lives in memory behind one mutex held only for short, non-async sections; a `watch`
//! channel ticks on every change so catch-up subscriptions know when to look again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

/// An event as the double stored it, for tests to inspect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: Uuid,
    pub revision: u64,
    pub event_type: String,
    pub data: Vec<u8>,
    pub custom_metadata: Vec<u8>,
    /// What a read returns as `content-type`. The server keeps only "is JSON", so this is
    /// `application/json` or `application/octet-stream`, whatever the writer sent.
    pub content_type: String,
}

/// An event in the log, shared between the stream, the global order and in-flight reads.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub id: Uuid,
    pub stream: Arc<str>,
    pub revision: u64,
    pub event_type: String,
    pub is_json: bool,
    pub data: Bytes,
    pub custom_metadata: Bytes,
    /// Log position; commit and prepare positions are both this value.
    pub position: u64,
    /// .NET ticks (100 ns) since the Unix epoch, as the server's `created` metadata.
    pub created_ticks: i64,
}

impl Recorded {
    pub fn content_type(&self) -> &'static str {
        if self.is_json {
            "application/json"
        } else {
            "application/octet-stream"
        }
    }

    fn to_stored(&self) -> StoredEvent {
        StoredEvent {
            id: self.id,
            revision: self.revision,
            event_type: self.event_type.clone(),
            data: self.data.to_vec(),
            custom_metadata: self.custom_metadata.to_vec(),
            content_type: self.content_type().to_owned(),
        }
    }
}

/// An event as a client proposes it.
#[derive(Debug)]
pub(crate) struct Proposed {
    pub id: Uuid,
    pub event_type: String,
    pub is_json: bool,
    pub data: Bytes,
    pub custom_metadata: Bytes,
}

/// What the writer expects of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

/// The answer to an append (or a delete).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Written, or recognised as already written. `current` is the revision of the last event of
    /// the write (`None`: the stream still does not exist); `position` that event's log position.
    Success {
        current: Option<u64>,
        position: Option<u64>,
    },
    WrongExpectedVersion {
        current: Option<u64>,
    },
    StreamDeleted,
}

/// The answer to a read of a stream.
pub(crate) enum StreamRead {
    Events {
        events: Vec<Arc<Recorded>>,
        /// The stream's last revision, for `last_stream_position`.
        last_revision: u64,
    },
    NotFound,
    Deleted,
}

/// A page of a catch-up subscription.
pub(crate) enum Page {
    Events(Vec<Arc<Recorded>>),
    Deleted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Forwards,
    Backwards,
}

/// Where a read starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ReadFrom {
    Start,
    End,
    /// A stream revision, or a log position for `$all`.
    At(u64),
}

#[derive(Default)]
struct Stream {
    events: Vec<Arc<Recorded>>,
    /// Events before this revision are hidden: the stream was soft-deleted at this point.
    truncate_before: u64,
    /// Soft-deleted and not written to since.
    soft_deleted: bool,
    tombstoned: bool,
}

impl Stream {
    fn last_revision(&self) -> Option<u64> {
        self.events.last().map(|e| e.revision)
    }

    fn visible(&self) -> &[Arc<Recorded>] {
        let skip = self
            .events
            .partition_point(|e| e.revision < self.truncate_before);
        &self.events[skip..]
    }
}

#[derive(Default)]
struct Log {
    streams: HashMap<Arc<str>, Stream>,
    /// Where each event id was last written: the server's committed-events index.
    ids: HashMap<Uuid, (Arc<str>, u64)>,
    /// Every event in commit order, for `$all`.
    all: Vec<Arc<Recorded>>,
    next_position: u64,
}

/// Size the server's log would give a record; only used to make positions grow like a real log's.
fn record_size(event: &Proposed, stream: &str) -> u64 {
    (96 + stream.len() + event.event_type.len() + event.data.len() + event.custom_metadata.len())
        as u64
}

fn now_ticks() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos() / 100).unwrap_or(i64::MAX)
}

pub(crate) struct Store {
    log: Mutex<Log>,
    changes: watch::Sender<u64>,
}

/// Where the first event goes: a real log starts with the server's own records, so no user event
/// is ever at position 0 (which clients also use for "no position").
const FIRST_POSITION: u64 = 1024;

impl Default for Store {
    fn default() -> Self {
        let log = Log {
            next_position: FIRST_POSITION,
            ..Log::default()
        };
        Store {
            log: Mutex::new(log),
            changes: watch::channel(0).0,
        }
    }
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock can only come from a bug in the double itself; the log
        // is still consistent (every mutation is completed before anything can panic).
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ticks after every write, delete and tombstone.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Appends atomically, with the server's expected-revision and idempotency rules.
    pub fn append(&self, stream: &str, expected: Expected, events: Vec<Proposed>) -> WriteOutcome {
        let mut log = self.lock();
        let name: Arc<str> = match log.streams.get_key_value(stream) {
            Some((name, _)) => name.clone(),
            None => Arc::from(stream),
        };
        let decision = log.check_commit(&name, expected, &events);
        match decision {
            Decision::Write => {}
            Decision::Answer(outcome) => return outcome,
        }
        if events.is_empty() {
            // Nothing to write: the server answers with the stream as it is.
            let current = log.streams.get(stream).and_then(Stream::last_revision);
            return WriteOutcome::Success {
                current,
                position: None,
            };
        }

        let created_ticks = now_ticks();
        let first_revision = log
            .streams
            .get(stream)
            .and_then(Stream::last_revision)
            .map_or(0, |r| r + 1);
        let mut last = None;
        for (revision, event) in (first_revision..).zip(events) {
            let position = log.next_position;
            log.next_position += record_size(&event, &name);
            let recorded = Arc::new(Recorded {
                id: event.id,
                stream: name.clone(),
                revision,
                event_type: event.event_type,
                is_json: event.is_json,
                data: event.data,
                custom_metadata: event.custom_metadata,
                position,
                created_ticks,
            });
            log.ids.insert(event.id, (name.clone(), revision));
            log.all.push(recorded.clone());
            let entry = log.streams.entry(name.clone()).or_default();
            entry.soft_deleted = false;
            entry.events.push(recorded);
            last = Some((revision, position));
        }
        drop(log);
        self.changed();
        WriteOutcome::Success {
            current: last.map(|(revision, _)| revision),
            position: last.map(|(_, position)| position),
        }
    }

    /// Soft delete: the stream reads as not found until written again; revisions continue.
    pub fn delete(&self, stream: &str, expected: Expected) -> WriteOutcome {
        let mut log = self.lock();
        let Some(s) = log.streams.get_mut(stream) else {
            return WriteOutcome::WrongExpectedVersion { current: None };
        };
        if s.tombstoned {
            return WriteOutcome::StreamDeleted;
        }
        let current = s.last_revision();
        if !expectation_holds(expected, current) {
            return WriteOutcome::WrongExpectedVersion { current };
        }
        s.truncate_before = current.map_or(0, |r| r + 1);
        s.soft_deleted = true;
        let position = log.next_position;
        log.next_position += 96;
        drop(log);
        self.changed();
        WriteOutcome::Success {
            current,
            position: Some(position),
        }
    }

    /// Hard delete: the stream can never be read or written again.
    pub fn tombstone(&self, stream: &str, expected: Expected) -> WriteOutcome {
        let mut log = self.lock();
        let current = log.streams.get(stream).and_then(Stream::last_revision);
        if log.streams.get(stream).is_some_and(|s| s.tombstoned) {
            return WriteOutcome::StreamDeleted;
        }
        if !expectation_holds(expected, current) {
            return WriteOutcome::WrongExpectedVersion { current };
        }
        let name: Arc<str> = Arc::from(stream);
        log.streams.entry(name).or_default().tombstoned = true;
        let position = log.next_position;
        log.next_position += 96;
        drop(log);
        self.changed();
        WriteOutcome::Success {
            current,
            position: Some(position),
        }
    }

    /// Reads up to `count` events of a stream from `from`, in `direction`.
    pub fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        count: u64,
    ) -> StreamRead {
        let log = self.lock();
        let Some(s) = log.streams.get(stream) else {
            return StreamRead::NotFound;
        };
        if s.tombstoned {
            return StreamRead::Deleted;
        }
        let visible = s.visible();
        let Some(last) = visible.last().map(|e| e.revision) else {
            return StreamRead::NotFound;
        };
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let index_of = |revision: u64| visible.partition_point(|e| e.revision < revision);
        let events: Vec<Arc<Recorded>> = match (direction, from) {
            (Direction::Forwards, ReadFrom::Start) => visible.iter().take(count).cloned().collect(),
            (Direction::Forwards, ReadFrom::End) => Vec::new(),
            (Direction::Forwards, ReadFrom::At(r)) => {
                visible[index_of(r)..].iter().take(count).cloned().collect()
            }
            (Direction::Backwards, ReadFrom::Start) => {
                visible.iter().take(count.min(1)).cloned().collect()
            }
            (Direction::Backwards, ReadFrom::End) => {
                visible.iter().rev().take(count).cloned().collect()
            }
            (Direction::Backwards, ReadFrom::At(r)) => {
                let end = index_of(r.saturating_add(1));
                visible[..end].iter().rev().take(count).cloned().collect()
            }
        };
        StreamRead::Events {
            events,
            last_revision: last,
        }
    }

    /// Up to `limit` events of a stream after revision `after` (`None`: from the first).
    /// A stream that does not exist (yet) is simply empty: subscriptions wait for it.
    pub fn page_after(&self, stream: &str, after: Option<u64>, limit: usize) -> Page {
        let log = self.lock();
        let Some(s) = log.streams.get(stream) else {
            return Page::Events(Vec::new());
        };
        if s.tombstoned {
            return Page::Deleted;
        }
        let visible = s.visible();
        let start = after.map_or(0, |a| visible.partition_point(|e| e.revision <= a));
        Page::Events(visible[start..].iter().take(limit).cloned().collect())
    }

    /// The last revision of a stream, if it has one (tombstoned streams have none).
    pub fn last_revision(&self, stream: &str) -> Option<u64> {
        let log = self.lock();
        log.streams
            .get(stream)
            .filter(|s| !s.tombstoned)
            .and_then(Stream::last_revision)
    }

    /// Reads `$all` (event streams only; the double keeps no system streams).
    pub fn read_all(&self, direction: Direction, from: ReadFrom, count: u64) -> Vec<Arc<Recorded>> {
        let log = self.lock();
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let all = &log.all;
        match (direction, from) {
            (Direction::Forwards, ReadFrom::Start) => all.iter().take(count).cloned().collect(),
            (Direction::Forwards, ReadFrom::End) => Vec::new(),
            (Direction::Forwards, ReadFrom::At(p)) => {
                let start = all.partition_point(|e| e.position < p);
                all[start..].iter().take(count).cloned().collect()
            }
            (Direction::Backwards, ReadFrom::Start) => Vec::new(),
            (Direction::Backwards, ReadFrom::End) => {
                all.iter().rev().take(count).cloned().collect()
            }
            (Direction::Backwards, ReadFrom::At(p)) => {
                let end = all.partition_point(|e| e.position < p);
                all[..end].iter().rev().take(count).cloned().collect()
            }
        }
    }

    /// The stored events of a stream, all of them (soft-deleted ones included), for inspection.
    pub fn events(&self, stream: &str) -> Vec<StoredEvent> {
        let log = self.lock();
        log.streams
            .get(stream)
            .map(|s| s.events.iter().map(|e| e.to_stored()).collect())
            .unwrap_or_default()
    }
}

enum Decision {
    Write,
    Answer(WriteOutcome),
}

/// Whether a plain expectation holds for a stream whose last revision is `current`.
fn expectation_holds(expected: Expected, current: Option<u64>) -> bool {
    match expected {
        Expected::Any => true,
        Expected::NoStream => current.is_none(),
        Expected::StreamExists => current.is_some(),
        Expected::Exact(r) => current == Some(r),
    }
}

impl Log {
    /// The server's commit check, for a write of `events` to `stream`.
    fn check_commit(&self, stream: &Arc<str>, expected: Expected, events: &[Proposed]) -> Decision {
        let s = self.streams.get(stream);
        if s.is_some_and(|s| s.tombstoned) {
            return Decision::Answer(WriteOutcome::StreamDeleted);
        }
        let current = s.and_then(Stream::last_revision);
        let soft_deleted = s.is_some_and(|s| s.soft_deleted);
        let wrong = || Decision::Answer(WriteOutcome::WrongExpectedVersion { current });

        match expected {
            Expected::StreamExists if soft_deleted => Decision::Answer(WriteOutcome::StreamDeleted),
            Expected::StreamExists if current.is_none() => wrong(),
            Expected::Any | Expected::StreamExists => {
                // Idempotency by id, wherever the ids are in this stream.
                let mut found = Vec::with_capacity(events.len());
                for (i, event) in events.iter().enumerate() {
                    match self.ids.get(&event.id) {
                        Some((s, revision)) if s == stream => found.push(*revision),
                        _ if i == 0 => return Decision::Write,
                        _ => return wrong(),
                    }
                }
                match found.last() {
                    None => Decision::Write,
                    Some(&last) => Decision::Answer(self.already_written(stream, current, last)),
                }
            }
            Expected::NoStream | Expected::Exact(_) => {
                let expected_last = match expected {
                    Expected::Exact(r) => Some(r),
                    _ => None,
                };
                let expected_num = expected_last.map_or(-1, |r| r as i128);
                let current_num = current.map_or(-1, |r| r as i128);
                if expected_num == current_num {
                    return Decision::Write;
                }
                if expected_num > current_num {
                    return wrong();
                }
                // The stream is ahead: the same ids at the following revisions make a retry.
                let stream_events = s.map(|s| s.events.as_slice()).unwrap_or_default();
                let mut revision = expected_last.map_or(0, |r| r + 1);
                for (i, event) in events.iter().enumerate() {
                    let at = usize::try_from(revision)
                        .ok()
                        .and_then(|r| stream_events.get(r));
                    if at.is_some_and(|e| e.id == event.id) {
                        revision += 1;
                        continue;
                    }
                    if i == 0 && expected == Expected::NoStream && soft_deleted {
                        return Decision::Write;
                    }
                    return wrong();
                }
                if events.is_empty() {
                    return wrong();
                }
                Decision::Answer(self.already_written(stream, current, revision - 1))
            }
        }
    }

    /// The answer to an idempotent retry: the original revision and position of its last event.
    fn already_written(&self, stream: &str, current: Option<u64>, last: u64) -> WriteOutcome {
        let position = self
            .streams
            .get(stream)
            .and_then(|s| usize::try_from(last).ok().and_then(|i| s.events.get(i)))
            .map(|e| e.position);
        WriteOutcome::Success {
            current: Some(last).or(current),
            position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128) -> Proposed {
        Proposed {
            id: Uuid::from_u128(id),
            event_type: "t".into(),
            is_json: true,
            data: Bytes::from_static(b"{}"),
            custom_metadata: Bytes::new(),
        }
    }

    fn written(outcome: &WriteOutcome) -> Option<u64> {
        match outcome {
            WriteOutcome::Success { current, .. } => *current,
            other => panic!("expected success, got {other:?}"),
        }
    }

    #[test]
    fn exact_and_no_stream_expectations() {
        let store = Store::default();
        assert_eq!(
            store.append("s", Expected::Exact(0), vec![event(1)]),
            WriteOutcome::WrongExpectedVersion { current: None }
        );
        assert_eq!(
            written(&store.append("s", Expected::NoStream, vec![event(1)])),
            Some(0)
        );
        assert_eq!(
            store.append("s", Expected::NoStream, vec![event(2)]),
            WriteOutcome::WrongExpectedVersion { current: Some(0) }
        );
        assert_eq!(
            written(&store.append("s", Expected::Exact(0), vec![event(2), event(3)])),
            Some(2)
        );
        assert_eq!(
            store.append("s", Expected::Exact(5), vec![event(4)]),
            WriteOutcome::WrongExpectedVersion { current: Some(2) }
        );
    }

    #[test]
    fn a_retried_write_is_answered_with_its_original_revision_and_position() {
        let store = Store::default();
        let first = store.append("s", Expected::NoStream, vec![event(1), event(2)]);
        store.append("s", Expected::Exact(1), vec![event(3)]);
        assert_eq!(
            store.append("s", Expected::NoStream, vec![event(1), event(2)]),
            first
        );
        assert_eq!(
            store.append("s", Expected::Any, vec![event(1), event(2)]),
            first
        );
        assert_eq!(store.events("s").len(), 3);
        // Part of a retry with other ids is not a retry.
        assert_eq!(
            store.append("s", Expected::NoStream, vec![event(1), event(9)]),
            WriteOutcome::WrongExpectedVersion { current: Some(2) }
        );
        assert_eq!(
            store.append("s", Expected::Any, vec![event(1), event(9)]),
            WriteOutcome::WrongExpectedVersion { current: Some(2) }
        );
    }

    #[test]
    fn tombstoned_streams_refuse_everything() {
        let store = Store::default();
        store.append("s", Expected::Any, vec![event(1)]);
        written(&store.tombstone("s", Expected::Any));
        assert_eq!(
            store.append("s", Expected::Any, vec![event(2)]),
            WriteOutcome::StreamDeleted
        );
        assert!(matches!(
            store.read_stream("s", Direction::Forwards, ReadFrom::Start, 10),
            StreamRead::Deleted
        ));
    }

    #[test]
    fn soft_deleted_streams_read_as_missing_and_continue_their_revisions() {
        let store = Store::default();
        store.append("s", Expected::Any, vec![event(1), event(2)]);
        written(&store.delete("s", Expected::Exact(1)));
        assert!(matches!(
            store.read_stream("s", Direction::Forwards, ReadFrom::Start, 10),
            StreamRead::NotFound
        ));
        assert_eq!(
            written(&store.append("s", Expected::NoStream, vec![event(3)])),
            Some(2)
        );
        match store.read_stream("s", Direction::Forwards, ReadFrom::Start, 10) {
            StreamRead::Events { events, .. } => assert_eq!(events.len(), 1),
            _ => panic!("expected events"),
        }
    }
}
