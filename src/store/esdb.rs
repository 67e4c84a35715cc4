//! The EventStoreDB (KurrentDB) backend, on the official `kurrentdb` 1.x client (the crate
//! formerly published as `eventstore`; same gRPC protocol, servers EventStoreDB 20.6 and later).
//!
//! How the port maps onto EventStoreDB, and why:
//!
//! - **Connection strings pass through.** `esdb://`, `esdb+discover://`, `kurrentdb://` and
//!   `kurrentdb+discover://` URLs are parsed by `kurrentdb::ClientSettings`, so TLS, credentials,
//!   cluster seeds, DNS discovery and node preference are whatever the string says. Credentials
//!   never appear in our messages: the URL is shown with its password masked. The client installs
//!   rustls's aws-lc-rs crypto provider itself, once per process, before its first TLS set-up.
//! - **Events.** The event id passes through, so the server sees the ledger's ids. Data that is
//!   exactly one JSON value goes as `application/json`, byte for byte (a `RawValue`, never
//!   re-serialized, because the ledger hashes those bytes); any other bytes go as
//!   `application/octet-stream`. The port's metadata is the event's custom metadata, byte for
//!   byte. `created` is the server's clock, to the second (the client's resolution).
//! - **Expected revision and idempotence.** EventStoreDB recognises a repeated batch only at the
//!   position the expected revision points to (or by a recent-id cache for "any"), answers a
//!   repeat with the same success as a write, and writes a stored id again anywhere else. The port
//!   promises more: a batch already stored anywhere in the stream is a repeat with its original
//!   revisions, a batch partly stored is refused. So the store keeps, per stream it touches, the
//!   ids seen from the stream's start (filled by its own appends and by contiguous forward reads,
//!   such as the ledger's load), decides repeat / partial duplicate / conflict against them, and
//!   then appends with `StreamState::StreamRevision(last)` (or `NoStream`) whatever the caller's
//!   `ExpectedRevision` was (`Any`, `NoStream`, `StreamExists`, `Exact`): the server's check that
//!   the stream is still at `last` is what makes the id check atomic with the write. A
//!   wrong-expected-version answer means the stream moved: the store reads on and decides again,
//!   so a conflict reports the revision it just read (`None` for no stream).
//! - **Written or repeated.** A success answer cannot say whether the server wrote the batch or
//!   recognised another writer's batch with the same ids at those revisions. That matters only
//!   when the same ids can carry other bytes: name-based ids (UUID v3/v5, like the ledger's
//!   delivery ids, which two replicas derive from one redelivered Slack event with different
//!   clocks and hashes) or ids of no standard shape. For such a batch the store reads the
//!   revisions back: other bytes mean a repeat, `written: false`, so the ledger catches up
//!   instead of trusting its own draft. Time-based and random ids (v1, v4, v6, v7) are minted for
//!   one event, so the same id means the same bytes and a success is a write; this keeps the
//!   common append at one round trip. (A byte-identical batch sent by two writers is reported
//!   written to both: indistinguishable, and harmless.)
//! - **Reads.** Start, end or a revision, forwards or backwards, with a count; a missing stream
//!   reads as empty.
//! - **Subscriptions.** A catch-up subscription from the revision after `after`, confirmed before
//!   `subscribe` returns. `CaughtUp` comes once, after the event that was last when the
//!   subscription started (or the server's caught-up message, if that comes first), so it also
//!   works on servers that send none (before 23.10, and 23.10 for a stream that does not exist
//!   yet). Fell-behind notices and checkpoints are not the port's business. The client's own
//!   resubscription is off: any drop ends the subscription with one `Err`, and the caller
//!   subscribes again from the last revision it applied, which is exactly where the new
//!   subscription starts.
//! - **Availability.** Every call has one budget, [`BUDGET`] (under the ledger's 3 s), after which
//!   it is `Unavailable` and nothing more is sent. The client handle is rebuilt after
//!   connection-class errors and timeouts: a `kurrentdb` client whose first connection failed
//!   answers `ConnectionClosed` forever, and one whose node went away keeps using it. Appends and
//!   reads require the leader (a follower may lag behind the writes the id index is checked
//!   against); subscriptions follow whatever node the client picked. A not-leader answer makes
//!   the client reconnect to the leader it names; the call is tried again twice, then it is
//!   `Unavailable`. An append cut off by the budget may have been written: the next append to
//!   that stream reads first.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadStreamOptions, ResolvedEvent,
    StreamPosition, StreamState, SubscribeToStreamOptions, SubscriptionEvent, WriteResult,
};
use serde_json::value::RawValue;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
    StoreError, Subscription, SubscriptionItem,
};

/// How long one call of the port may take, retries included, before it is `Unavailable`.
pub const BUDGET: Duration = Duration::from_millis(2500);
/// Events per read while the id index catches up.
const PAGE: usize = 1000;
/// How often a call is tried again after a not-leader answer, and the pause before each try.
const NOT_LEADER_RETRIES: u32 = 2;
const NOT_LEADER_PAUSE: Duration = Duration::from_millis(100);

/// An event store on an EventStoreDB server or cluster. Cheap to share behind an `Arc`; several
/// instances and processes may use one server.
pub struct EsdbStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// The store URL with its password masked, for messages.
    url: String,
    settings: ClientSettings,
    connection: RwLock<Connection>,
    /// The id index of each stream this store has read from the start or appended to.
    streams: StdMutex<HashMap<String, Arc<Mutex<StreamIndex>>>>,
}

/// A client handle, numbered so that only the first of several failed calls rebuilds it.
#[derive(Clone)]
struct Connection {
    client: Client,
    generation: u64,
}

/// What this store knows of a stream's ids. Appends to the stream hold its lock throughout.
#[derive(Default)]
struct StreamIndex {
    /// The revision of every event id seen, from the stream's first event to `last`.
    ids: HashMap<Uuid, u64>,
    /// The last revision seen; `None` with `loaded`: the stream did not exist when last read.
    last: Option<u64>,
    /// `ids` hold the stream from its start to `last`.
    loaded: bool,
    /// An append may have been written without our seeing the answer: read before trusting
    /// `last`.
    uncertain: bool,
}

/// Why one try of a call failed.
enum Fail {
    Store(StoreError),
    /// The node is not the leader; the client is already reconnecting to the one it named.
    NotLeader(String),
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

impl EsdbStore {
    /// Parses the connection string and creates the client. Nothing is sent until the first
    /// call, so this succeeds while the server is down.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let shown = redact(url);
        let bad = |reason: String| StoreError::BadUrl {
            url: shown.clone(),
            reason,
        };
        // The message of a URL syntax error is the whole string, credentials included.
        let settings = url.parse::<ClientSettings>().map_err(|e| {
            bad(match e.error() {
                Some(syntax) => format!("not a connection string: {syntax}"),
                None => e.message().to_string(),
            })
        })?;
        let client = Client::new(settings.clone()).map_err(|e| bad(e.to_string()))?;
        Ok(EsdbStore {
            shared: Arc::new(Shared {
                url: shown,
                settings,
                connection: RwLock::new(Connection {
                    client,
                    generation: 0,
                }),
                streams: StdMutex::new(HashMap::new()),
            }),
        })
    }
}

#[async_trait]
impl EventStore for EsdbStore {
    /// Appends after deciding against the stream's id index; see the module doc. An empty batch
    /// reads the stream and only checks `expected`, returning `written: false` at the last
    /// revision (0 when the stream does not exist).
    #[tracing::instrument(skip(self, events), fields(expected_revision = %expected, events = events.len()))]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut in_batch = HashSet::with_capacity(events.len());
        if let Some(twice) = events.iter().find(|e| !in_batch.insert(e.id)) {
            return Err(StoreError::PartialDuplicate {
                stream: stream.to_string(),
                id: twice.id,
            });
        }
        let (shared, events) = (&self.shared, &events);
        shared
            .run("append", || shared.append_once(stream, expected, events))
            .await
    }

    async fn read(
        &self,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let shared = &self.shared;
        let events = shared
            .run("read", || async move {
                let connection = shared.connection();
                shared
                    .read_once(&connection, stream, direction, from, max)
                    .await
            })
            .await?;
        let start = match from {
            ReadFrom::Start => Some(0),
            ReadFrom::Revision(r) => Some(r),
            ReadFrom::End => None,
        };
        if let (Direction::Forwards, Some(start)) = (direction, start) {
            shared.observe(stream, start, &events);
        }
        Ok(events)
    }

    async fn subscribe(
        &self,
        stream: &str,
        after: Option<u64>,
    ) -> Result<Subscription, StoreError> {
        let shared = &self.shared;
        let feed = shared
            .run("subscription", || shared.start_feed(stream, after))
            .await?;
        let items = futures::stream::unfold(feed, |mut feed| async move {
            feed.next().await.map(|item| (item, feed))
        });
        Ok(items.boxed())
    }
}

impl Shared {
    /// Runs `attempt` within [`BUDGET`], trying again after not-leader answers.
    async fn run<T, F>(&self, what: &str, mut attempt: impl FnMut() -> F) -> Result<T, StoreError>
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

    async fn append_once(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: &[NewEvent],
    ) -> Result<AppendResult, Fail> {
        let connection = self.connection();
        let index = self.index(stream);
        let mut index = index.lock().await;
        // The index is trusted as it is only when it agrees with `expected`: a conflict or an
        // empty batch is only answered from a fresh read.
        let mut must_read = !index.loaded
            || index.uncertain
            || events.is_empty()
            || index.target(expected).is_none();
        loop {
            if must_read {
                self.catch_up(&connection, stream, &mut index).await?;
            }
            match index.find(events) {
                Ok(None) => {}
                Ok(Some(first)) => {
                    let last = first + (events.len() as u64 - 1);
                    return Ok(repeat(first, last));
                }
                Err(id) => {
                    return Err(StoreError::PartialDuplicate {
                        stream: stream.to_string(),
                        id,
                    }
                    .into());
                }
            }
            let Some(state) = index.target(expected) else {
                return Err(StoreError::WrongExpectedRevision {
                    stream: stream.to_string(),
                    expected,
                    actual: index.last,
                }
                .into());
            };
            if events.is_empty() {
                let at = index.last.unwrap_or(0);
                return Ok(repeat(at, at));
            }
            index.uncertain = true;
            match self.append_call(&connection, stream, state, events).await {
                Ok(result) => {
                    return self
                        .confirm(&connection, stream, &mut index, events, result)
                        .await;
                }
                // Nothing was written; the stream moved on since the index last saw it.
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => {
                    index.uncertain = false;
                    must_read = true;
                }
                Err(error) => return Err(self.fail(connection.generation, error)),
            }
        }
    }

    async fn append_call(
        &self,
        connection: &Connection,
        stream: &str,
        state: StreamState,
        events: &[NewEvent],
    ) -> Result<WriteResult, kurrentdb::Error> {
        let options = AppendToStreamOptions::default()
            .stream_state(state)
            .requires_leader(true)
            .deadline(BUDGET);
        let events: Vec<EventData> = events.iter().map(event_data).collect();
        connection
            .client
            .append_to_stream(stream, &options, events)
            .await
    }

    /// Turns the server's success into the port's answer. A success is a write, unless the batch
    /// has ids another writer may have sent with other bytes: then the revisions are read back.
    async fn confirm(
        &self,
        connection: &Connection,
        stream: &str,
        index: &mut StreamIndex,
        events: &[NewEvent],
        result: WriteResult,
    ) -> Result<AppendResult, Fail> {
        let last = result.next_expected_version;
        let first = (last + 1).checked_sub(events.len() as u64).ok_or_else(|| {
            StoreError::Backend(format!(
                "stream {stream}: EventStoreDB acknowledged {} events at revision {last}",
                events.len()
            ))
        })?;
        let written = if events.iter().all(|e| minted_once(e.id)) {
            true
        } else {
            let stored = self
                .read_once(
                    connection,
                    stream,
                    Direction::Forwards,
                    ReadFrom::Revision(first),
                    events.len(),
                )
                .await?;
            if stored.len() != events.len() || stored.iter().zip(events).any(|(s, e)| s.id != e.id)
            {
                return Err(StoreError::Backend(format!(
                    "stream {stream}: EventStoreDB acknowledged the append at revisions \
                     {first}..={last}, but other events are stored there"
                ))
                .into());
            }
            stored.iter().zip(events).all(|(s, e)| {
                s.event_type == e.event_type && s.data == e.data && s.metadata == e.metadata
            })
        };
        if first == index.next() {
            index.absorb(first, events.iter().map(|e| e.id).zip(first..));
            index.uncertain = false;
        }
        Ok(AppendResult {
            first_revision: first,
            last_revision: last,
            written,
        })
    }

    /// Reads the stream from where the index ends to the stream's end.
    async fn catch_up(
        &self,
        connection: &Connection,
        stream: &str,
        index: &mut StreamIndex,
    ) -> Result<(), Fail> {
        loop {
            let from = index.next();
            let page = self
                .read_once(
                    connection,
                    stream,
                    Direction::Forwards,
                    ReadFrom::Revision(from),
                    PAGE,
                )
                .await?;
            index.absorb(from, page.iter().map(|e| (e.id, e.revision)));
            if page.len() < PAGE {
                index.uncertain = false;
                return Ok(());
            }
        }
    }

    async fn read_once(
        &self,
        connection: &Connection,
        stream: &str,
        direction: Direction,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Fail> {
        // `position` also sets the direction (forwards from the start, backwards from the end),
        // so the direction is set after it.
        let options = ReadStreamOptions::default().position(match from {
            ReadFrom::Start => StreamPosition::Start,
            ReadFrom::End => StreamPosition::End,
            ReadFrom::Revision(r) => StreamPosition::Position(r),
        });
        let options = match direction {
            Direction::Forwards => options.forwards(),
            Direction::Backwards => options.backwards(),
        }
        .max_count(max)
        .requires_leader(true)
        .deadline(BUDGET);
        let not_found = |e: &kurrentdb::Error| matches!(e, kurrentdb::Error::ResourceNotFound);
        let mut reading = match connection.client.read_stream(stream, &options).await {
            Ok(reading) => reading,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(connection.generation, e)),
        };
        let mut events = Vec::new();
        loop {
            match reading.next().await {
                Ok(Some(resolved)) => events.push(recorded(stream, &resolved)?),
                Ok(None) => return Ok(events),
                Err(e) if not_found(&e) => return Ok(Vec::new()),
                Err(e) => return Err(self.fail(connection.generation, e)),
            }
        }
    }

    /// Feeds a forward read from `from` to the stream's index, unless an append holds it.
    fn observe(&self, stream: &str, from: u64, events: &[RecordedEvent]) {
        if let Ok(mut index) = self.index(stream).try_lock() {
            index.absorb(from, events.iter().map(|e| (e.id, e.revision)));
        }
    }

    async fn start_feed(self: &Arc<Self>, stream: &str, after: Option<u64>) -> Result<Feed, Fail> {
        let connection = self.connection();
        let history_end = self
            .read_once(&connection, stream, Direction::Backwards, ReadFrom::End, 1)
            .await?
            .first()
            .map(|e| e.revision);
        let options = SubscribeToStreamOptions::default()
            .start_from(after.map_or(StreamPosition::Start, StreamPosition::Position));
        let mut subscription = connection
            .client
            .subscribe_to_stream(stream, &options)
            .await;
        let early = loop {
            match subscription.next_subscription_event().await {
                Ok(SubscriptionEvent::Confirmed(_)) => break None,
                // A server that does not confirm starts with the first event.
                Ok(SubscriptionEvent::EventAppeared(event)) => break Some(event),
                Ok(_) => {}
                Err(e) => return Err(self.fail(connection.generation, e)),
            }
        };
        Ok(Feed {
            shared: Arc::clone(self),
            generation: connection.generation,
            stream: stream.to_string(),
            subscription,
            history_end,
            delivered: after,
            caught_up: false,
            early,
            done: false,
        })
    }

    /// Maps a client error; rebuilds the client after connection-class errors.
    fn fail(&self, generation: u64, error: kurrentdb::Error) -> Fail {
        use kurrentdb::Error as E;
        match error {
            E::NotLeaderException(leader) => {
                Fail::NotLeader(format!("{}:{}", leader.host, leader.port))
            }
            E::ConnectionClosed
            | E::GrpcConnectionError(_)
            | E::ServerError(_)
            | E::DeadlineExceeded => {
                self.reconnect(generation);
                Fail::Store(StoreError::Unavailable(format!(
                    "EventStoreDB at {} cannot be reached: {}",
                    self.url,
                    reason(&error)
                )))
            }
            E::AccessDenied => Fail::Store(StoreError::Backend(format!(
                "EventStoreDB at {} refused access: check the credentials in the store URL",
                self.url
            ))),
            other => Fail::Store(StoreError::Backend(format!(
                "EventStoreDB at {}: {other}",
                self.url
            ))),
        }
    }

    fn connection(&self) -> Connection {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the client, unless another failed call already did since `generation`.
    fn reconnect(&self, generation: u64) {
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

    fn index(&self, stream: &str) -> Arc<Mutex<StreamIndex>> {
        let mut streams = lock(&self.streams);
        Arc::clone(streams.entry(stream.to_string()).or_default())
    }
}

impl StreamIndex {
    /// The revision after the last one seen: where the index goes on from.
    fn next(&self) -> u64 {
        self.last.map_or(0, |r| r + 1)
    }

    /// Takes in events read forwards from `from`, if they go on from what is known.
    fn absorb(&mut self, from: u64, events: impl IntoIterator<Item = (Uuid, u64)>) {
        if from != self.next() {
            return;
        }
        self.loaded = true;
        for (id, revision) in events {
            if self.last.is_none_or(|last| revision > last) {
                self.ids.insert(id, revision);
                self.last = Some(revision);
            }
        }
    }

    /// Where the batch is stored already: nowhere (`Ok(None)`), all of it in order from a
    /// revision (`Ok(Some(first))`), or only partly (`Err` with a stored id).
    fn find(&self, events: &[NewEvent]) -> Result<Option<u64>, Uuid> {
        let stored: Vec<Option<u64>> = events
            .iter()
            .map(|e| self.ids.get(&e.id).copied())
            .collect();
        let Some(stored_id) = events
            .iter()
            .zip(&stored)
            .find_map(|(e, at)| at.map(|_| e.id))
        else {
            return Ok(None);
        };
        match stored.first() {
            Some(Some(first))
                if stored
                    .iter()
                    .zip(*first..)
                    .all(|(at, want)| *at == Some(want)) =>
            {
                Ok(Some(*first))
            }
            _ => Err(stored_id),
        }
    }

    /// The stream state to append with, if `expected` holds for the stream as the index sees it.
    fn target(&self, expected: ExpectedRevision) -> Option<StreamState> {
        match (expected, self.last) {
            (ExpectedRevision::Any | ExpectedRevision::NoStream, None) => {
                Some(StreamState::NoStream)
            }
            (ExpectedRevision::Any | ExpectedRevision::StreamExists, Some(last)) => {
                Some(StreamState::StreamRevision(last))
            }
            (ExpectedRevision::Exact(r), Some(last)) if r == last => {
                Some(StreamState::StreamRevision(last))
            }
            _ => None,
        }
    }
}

/// A running catch-up subscription.
struct Feed {
    shared: Arc<Shared>,
    generation: u64,
    stream: String,
    subscription: kurrentdb::Subscription,
    /// The stream's last revision when the subscription started: the end of its history.
    history_end: Option<u64>,
    delivered: Option<u64>,
    caught_up: bool,
    /// An event that came before any confirmation.
    early: Option<ResolvedEvent>,
    /// The subscription failed and said so; it yields nothing more.
    done: bool,
}

impl Feed {
    async fn next(&mut self) -> Option<Result<SubscriptionItem, StoreError>> {
        if self.done {
            return None;
        }
        if !self.caught_up && self.history_delivered() {
            self.caught_up = true;
            return Some(Ok(SubscriptionItem::CaughtUp));
        }
        loop {
            let next = match self.early.take() {
                Some(event) => Ok(SubscriptionEvent::EventAppeared(event)),
                None => self.subscription.next_subscription_event().await,
            };
            match next {
                Ok(SubscriptionEvent::EventAppeared(resolved)) => {
                    return Some(match recorded(&self.stream, &resolved) {
                        Ok(event) => {
                            self.delivered = Some(event.revision);
                            Ok(SubscriptionItem::Event(event))
                        }
                        Err(error) => {
                            self.done = true;
                            Err(error)
                        }
                    });
                }
                Ok(SubscriptionEvent::CaughtUp(_)) if !self.caught_up => {
                    self.caught_up = true;
                    return Some(Ok(SubscriptionItem::CaughtUp));
                }
                Ok(_) => {}
                Err(error) => {
                    self.done = true;
                    let error = match self.shared.fail(self.generation, error) {
                        Fail::Store(error) => error,
                        Fail::NotLeader(leader) => StoreError::Unavailable(format!(
                            "EventStoreDB at {}: the node is not the leader ({leader} is)",
                            self.shared.url
                        )),
                    };
                    return Some(Err(error));
                }
            }
        }
    }

    fn history_delivered(&self) -> bool {
        match self.history_end {
            None => true,
            Some(end) => self.delivered.is_some_and(|d| d >= end),
        }
    }
}

/// Whether the id is of a kind made for one event only (time-based or random: UUID versions 1,
/// 4, 6 and 7), so no other writer sends it with other bytes. Name-based ids (versions 3 and 5,
/// like the ledger's delivery ids) and ids of any other shape can come from several writers.
fn minted_once(id: Uuid) -> bool {
    id.get_variant() == uuid::Variant::RFC4122 && matches!(id.get_version_num(), 1 | 4 | 6 | 7)
}

fn event_data(event: &NewEvent) -> EventData {
    let data = match raw_json(&event.data) {
        Some(json) => EventData::json(&event.event_type, &json).ok(),
        None => None,
    }
    .unwrap_or_else(|| EventData::binary(&event.event_type, event.data.clone().into()));
    data.id(event.id).metadata(event.metadata.clone().into())
}

/// `data` as a JSON value that serializes back to the same bytes, if it is exactly one.
fn raw_json(data: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(data).ok()?;
    let json = RawValue::from_string(text.to_string()).ok()?;
    // `from_string` drops whitespace around the value.
    (json.get().len() == data.len()).then_some(json)
}

fn recorded(stream: &str, resolved: &ResolvedEvent) -> Result<RecordedEvent, StoreError> {
    let event = resolved
        .event
        .as_ref()
        .or(resolved.link.as_ref())
        .ok_or_else(|| StoreError::Backend(format!("stream {stream}: a read without an event")))?;
    Ok(RecordedEvent {
        stream: stream.to_string(),
        revision: event.revision,
        id: event.id,
        event_type: event.event_type.clone(),
        data: event.data.to_vec(),
        metadata: event.custom_metadata.to_vec(),
        created: event.created,
    })
}

/// What went wrong, in a few words: the gRPC status message when the error carries one (its
/// full rendering lists headers and details nobody reading a reply needs).
fn reason(error: &kurrentdb::Error) -> String {
    let text = error.to_string();
    text.split_once("message: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or(text.clone(), |(message, _)| message.to_string())
}

fn repeat(first_revision: u64, last_revision: u64) -> AppendResult {
    AppendResult {
        first_revision,
        last_revision,
        written: false,
    }
}

/// The URL with the password of its user info masked.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, hosts)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{hosts}{tail}")
        }
        None => url.to_string(),
    }
}

fn lock<T>(mutex: &StdMutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_event(id: u128) -> NewEvent {
        NewEvent {
            id: Uuid::from_u128(id),
            event_type: "T".to_string(),
            data: b"{}".to_vec(),
            metadata: Vec::new(),
        }
    }

    fn index_of(ids: &[u128]) -> StreamIndex {
        let mut index = StreamIndex::default();
        index.absorb(0, ids.iter().map(|&id| Uuid::from_u128(id)).zip(0..));
        index
    }

    #[test]
    fn redact_masks_the_password_only() {
        assert_eq!(
            redact("esdb://admin:changeit@db1:2113,db2:2113?tls=true"),
            "esdb://admin:***@db1:2113,db2:2113?tls=true"
        );
        assert_eq!(
            redact("kurrentdb+discover://ops:p%40ss@cluster.local/?tls=false"),
            "kurrentdb+discover://ops:***@cluster.local/?tls=false"
        );
        assert_eq!(
            redact("esdb://localhost:2113?tls=false"),
            "esdb://localhost:2113?tls=false"
        );
    }

    #[test]
    fn find_tells_new_repeated_and_partly_stored_batches_apart() {
        let index = index_of(&[1, 2, 3]);
        let batch = |ids: &[u128]| ids.iter().map(|&id| new_event(id)).collect::<Vec<_>>();
        assert_eq!(index.find(&batch(&[7, 8])), Ok(None));
        assert_eq!(index.find(&batch(&[1, 2, 3])), Ok(Some(0)));
        assert_eq!(index.find(&batch(&[2])), Ok(Some(1)));
        assert_eq!(index.find(&batch(&[3, 7])), Err(Uuid::from_u128(3)));
        assert_eq!(index.find(&batch(&[7, 1])), Err(Uuid::from_u128(1)));
        assert_eq!(index.find(&batch(&[2, 1])), Err(Uuid::from_u128(2)));
        assert_eq!(index.find(&batch(&[1, 3])), Err(Uuid::from_u128(1)));
    }

    #[test]
    fn absorb_only_takes_reads_that_go_on_from_the_index() {
        let mut index = index_of(&[1, 2]);
        index.absorb(5, []);
        assert_eq!(index.last, Some(1));
        let mut fresh = StreamIndex::default();
        fresh.absorb(3, []);
        assert!(
            !fresh.loaded,
            "a read from the middle says nothing of the start"
        );
        fresh.absorb(0, []);
        assert!(
            fresh.loaded && fresh.last.is_none(),
            "an empty read from 0: no stream"
        );
    }

    #[test]
    fn target_maps_expected_revisions_onto_the_known_last_revision() {
        let missing = index_of(&[]);
        let three = index_of(&[1, 2, 3]);
        use ExpectedRevision::*;
        let cases = [
            (&missing, Any, Some(StreamState::NoStream)),
            (&missing, NoStream, Some(StreamState::NoStream)),
            (&missing, StreamExists, None),
            (&missing, Exact(0), None),
            (&three, Any, Some(StreamState::StreamRevision(2))),
            (&three, NoStream, None),
            (&three, StreamExists, Some(StreamState::StreamRevision(2))),
            (&three, Exact(2), Some(StreamState::StreamRevision(2))),
            (&three, Exact(1), None),
        ];
        for (index, expected, want) in cases {
            assert_eq!(index.target(expected), want, "{expected}");
        }
    }

    #[test]
    fn only_time_based_and_random_ids_skip_the_read_back() {
        assert!(minted_once(Uuid::now_v7()));
        assert!(minted_once(
            uuid::Builder::from_random_bytes([7; 16]).into_uuid()
        ));
        assert!(!minted_once(Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            b"slack:Ev1"
        )));
        assert!(!minted_once(Uuid::nil()));
        assert!(!minted_once(Uuid::max()));
    }

    #[test]
    fn reason_keeps_the_status_message_only() {
        let refused = kurrentdb::Error::ServerError(
            r#"status: Unknown, message: "client error (Connect)", details: [], metadata: MetadataMap { headers: {} }"#
                .to_string(),
        );
        assert_eq!(reason(&refused), "client error (Connect)");
        assert_eq!(
            reason(&kurrentdb::Error::ConnectionClosed),
            "Connection is closed."
        );
    }

    #[test]
    fn only_exact_json_values_travel_as_json() {
        assert!(raw_json(br#"{"a":1,"b":"caf\u00e9"}"#).is_some());
        assert!(raw_json(b"[1, 2]").is_some());
        assert!(raw_json(b" {}").is_none(), "whitespace would be lost");
        assert!(raw_json(b"{} {}").is_none());
        assert!(raw_json(&[0xff, 0x00]).is_none());
        assert!(raw_json(b"").is_none());
    }
}
