//! The worker that delivers release markers, in every `serve` replica that has a sink
//! configured. Woken by the follower and by a short tick, it looks past each sink's checkpoint
//! for a deployment event; when there is one, it takes the lease (see `deliveries`) and, while
//! it holds it, delivers each sink's markers in ledger order, each sink on its own so that a
//! slow or failing receiver holds up only itself.
//!
//! A marker is recorded as delivered (or dead-lettered) after its receiver answered: a replica
//! that dies in between leaves it to whichever replica takes the lease over once it has run
//! out, which sends it again with the same ledger event id. That window is the only place a
//! receiver sees a repeat; everything else is delivered once. An idle replica records nothing:
//! events that are not deployments move only an in-memory cursor, and the lease is renewed
//! only while there is work.
//!
//! A sink's first checkpoint is the ledger's end when the process that first runs it started,
//! so configuring a sink on an old ledger does not replay its history to the receiver, and
//! nothing recorded after the start is skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use futures::future::join_all;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::domain::{Event, ServiceName};
use crate::envelope::{self, Recorded};
use crate::follower::Followed;
use crate::metrics::METRICS;
use crate::read::DeploymentFilter;
use crate::store::{Direction, EventStore, ReadFrom, RecordedEvent};

use super::attempt::Retry;
use super::deliveries::{DeadLetter, Record};
use super::marker::{Outcome, Start};
use super::{Deliveries, Delivery, Marker, Memory, Sink, SinkError};

/// How many ledger events are read at a time while looking for the next marker.
const PAGE: usize = 256;
/// How often the worker looks without being woken (for a lease that ran out).
const TICK: Duration = Duration::from_millis(500);
/// The longest wait between two retries that the backoff chooses by itself.
const LONGEST_BACKOFF: Duration = Duration::from_secs(60);

pub struct Outbox {
    pub store: Arc<dyn EventStore>,
    /// The ledger stream.
    pub stream: String,
    pub deliveries: Arc<Deliveries>,
    pub followed: Followed,
    pub sinks: Vec<Arc<dyn Sink>>,
    pub delivery: Delivery,
    /// This process, in the lease and the records.
    pub replica: String,
    /// The ledger's last revision when this process started: a sink that has never run starts
    /// past it (not past wherever the follower is when the loop first gets the lease, which
    /// would skip a deployment recorded in between).
    pub origin: Option<u64>,
}

/// How one sink's catch-up ended.
enum Stopped {
    /// Every marker up to the target is recorded; the next revision to look at.
    CaughtUp(u64),
    /// The lease was lost: another replica delivers from here.
    LeaseLost,
}

impl Outbox {
    /// Runs one delivery loop per sink, so that a slow or failing receiver holds up only
    /// itself, until `stop` says so; then waits for the loops to end before returning.
    pub fn spawn(self, mut stop: tokio::sync::watch::Receiver<bool>) -> JoinHandle<()> {
        let outbox = Arc::new(self);
        tokio::spawn(async move {
            let mut loops = tokio::task::JoinSet::new();
            for sink in outbox.sinks.clone() {
                let outbox = outbox.clone();
                loops.spawn(async move { outbox.run(sink).await });
            }
            let _ = stop.wait_for(|stopped| *stopped).await;
            loops.shutdown().await;
        })
    }

    async fn run(&self, sink: Arc<dyn Sink>) {
        let mut changes = self.followed.changes();
        // The next ledger revision to look at: past the checkpoint, the events already seen to
        // hold no marker.
        let mut cursors: HashMap<String, u64> = HashMap::new();
        let tick = TICK.min(self.delivery.lease / 3);
        let sinks = [sink];
        loop {
            if let Err(error) = self.round(&sinks, &mut cursors).await {
                warn!(sink = sinks[0].name(), %error, "release markers are behind the ledger; trying again");
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Delivers what is due, if this replica gets the lease.
    async fn round(
        &self,
        sinks: &[Arc<dyn Sink>],
        cursors: &mut HashMap<String, u64>,
    ) -> Result<(), SinkError> {
        let progress = self.followed.progress();
        if !progress.caught_up {
            return Ok(());
        }
        let target = progress.revision;
        let view = self.deliveries.view().await?;
        let unstarted = sinks
            .iter()
            .any(|s| !view.checkpoints.contains_key(s.name()));
        let mut due = Vec::new();
        if let Some(target) = target {
            for sink in sinks {
                let Some(checkpoint) = view.checkpoints.get(sink.name()) else {
                    continue;
                };
                let past = checkpoint.map_or(0, |r| r + 1);
                let from = cursors.get(sink.name()).copied().unwrap_or(0).max(past);
                match self.next_marker(from, target).await? {
                    Some(_) => due.push(sink.clone()),
                    None => {
                        cursors.insert(sink.name().to_string(), target + 1);
                    }
                }
            }
        }
        if !unstarted && due.is_empty() {
            return Ok(());
        }
        if !self
            .deliveries
            .lease(&self.replica, self.delivery.lease)
            .await?
        {
            return Ok(());
        }
        // Read again under the lease: the previous holder may have started a sink since.
        let view = self.deliveries.view().await?;
        let unstarted: Vec<&Arc<dyn Sink>> = sinks
            .iter()
            .filter(|s| !view.checkpoints.contains_key(s.name()))
            .collect();
        if !unstarted.is_empty() {
            let records: Vec<Record> = unstarted
                .iter()
                .map(|sink| Record::Delivered {
                    sink: sink.name().to_string(),
                    revision: self.origin,
                    event_id: None,
                    replica: self.replica.clone(),
                })
                .collect();
            if self
                .deliveries
                .record(&self.replica, &records)
                .await?
                .is_ok()
            {
                for sink in &unstarted {
                    info!(sink = sink.name(), revision = ?self.origin, "release markers start here");
                }
            }
        }
        let Some(target) = target else {
            return Ok(());
        };
        let cursors_now = &*cursors;
        let catch_ups = due.into_iter().map(|sink| async move {
            let cursor = cursors_now.get(sink.name()).copied().unwrap_or(0);
            let result = self.catch_up(&sink, cursor, target).await;
            (sink, result)
        });
        let ended = tokio::select! {
            ended = join_all(catch_ups) => ended,
            () = self.keep_lease() => {
                warn!("the delivery lease was lost; another replica delivers from here");
                return Ok(());
            }
        };
        for (sink, result) in ended {
            match result {
                Ok(Stopped::CaughtUp(next)) => {
                    cursors.insert(sink.name().to_string(), next);
                }
                Ok(Stopped::LeaseLost) => {}
                Err(error) => warn!(sink = sink.name(), %error, "a sink is behind the ledger"),
            }
        }
        Ok(())
    }

    /// Renews the lease while deliveries run; returns when it is lost.
    async fn keep_lease(&self) {
        loop {
            tokio::time::sleep(self.delivery.lease / 3).await;
            match self
                .deliveries
                .lease(&self.replica, self.delivery.lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                // The store did not answer: the lease runs out unless a later renewal works,
                // and then no record of this replica is accepted any more.
                Err(error) => warn!(%error, "the delivery lease could not be renewed"),
            }
        }
    }

    /// Delivers `sink`'s markers past its checkpoint (and `cursor`) up to `target`. The
    /// checkpoint is read again now that this replica holds the lease: the previous holder
    /// may have moved it since the round began.
    async fn catch_up(
        &self,
        sink: &Arc<dyn Sink>,
        cursor: u64,
        target: u64,
    ) -> Result<Stopped, SinkError> {
        let view = self.deliveries.view().await?;
        let checkpoint = view.checkpoints.get(sink.name()).copied().flatten();
        let mut from = checkpoint.map_or(0, |r| r + 1).max(cursor);
        let (mut delivered, mut dead) = (0u32, 0u32);
        while let Some((raw, recorded)) = self.next_marker(from, target).await? {
            from = recorded.revision + 1;
            match self.deliver(sink, &raw, &recorded).await? {
                Some(true) => delivered += 1,
                Some(false) => dead += 1,
                None => return Ok(Stopped::LeaseLost),
            }
        }
        if delivered + dead > 0 {
            info!(
                sink = sink.name(),
                delivered,
                dead_lettered = dead,
                upto = target,
                "release markers delivered"
            );
        }
        Ok(Stopped::CaughtUp(target + 1))
    }

    /// The first deployment event at or after `from`, up to `target`.
    async fn next_marker(
        &self,
        mut from: u64,
        target: u64,
    ) -> Result<Option<(RecordedEvent, Recorded)>, SinkError> {
        while from <= target {
            let page = self
                .store
                .read(
                    &self.stream,
                    Direction::Forwards,
                    ReadFrom::Revision(from),
                    PAGE,
                )
                .await?;
            let Some(last) = page.last().map(|e| e.revision) else {
                return Ok(None);
            };
            for raw in page.into_iter().take_while(|e| e.revision <= target) {
                if !matches!(
                    raw.event_type.as_str(),
                    "DeploymentStarted"
                        | "DeploymentFinished"
                        | "DeploymentRolledBack"
                        | "DeploymentAbandoned"
                ) {
                    continue;
                }
                let recorded =
                    envelope::decode(&raw).map_err(|e| SinkError::Decode(e.to_string()))?;
                return Ok(Some((raw, recorded)));
            }
            from = last + 1;
        }
        Ok(None)
    }

    /// Delivers one marker with retries and records the result: `Some(true)` delivered,
    /// `Some(false)` dead-lettered, `None` when the lease was lost before it was recorded.
    async fn deliver(
        &self,
        sink: &Arc<dyn Sink>,
        raw: &RecordedEvent,
        recorded: &Recorded,
    ) -> Result<Option<bool>, SinkError> {
        let start = match Outcome::of(&recorded.event) {
            Some(Outcome::Started) | None => None,
            Some(_) => self.start_of(recorded).await?,
        };
        let Some(marker) = Marker::of(raw, recorded, start) else {
            return Ok(Some(true));
        };
        let view = self.deliveries.view().await?;
        if !view.holds(&self.replica, Utc::now()) {
            return Ok(None);
        }
        let memory = Memory {
            start_annotation: marker
                .start
                .as_ref()
                .and_then(|s| view.annotations.get(&s.event_id).copied()),
        };
        let name = sink.name();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.delivery.retry_delay)
            .with_max_delay(LONGEST_BACKOFF)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0;
        let records = loop {
            attempts += 1;
            let failure = match sink.deliver(&marker, &memory).await {
                Ok(note) => {
                    METRICS.sink_delivery(name, "delivered");
                    let mut records = vec![Record::Delivered {
                        sink: name.to_string(),
                        revision: Some(marker.revision),
                        event_id: Some(marker.event_id),
                        replica: self.replica.clone(),
                    }];
                    records.extend(note.map(Record::Annotated));
                    break records;
                }
                Err(failure) => failure,
            };
            let wait = match failure.retry {
                Retry::Later { after } if attempts < self.delivery.attempts => {
                    after.unwrap_or_else(|| backoff.next().unwrap_or(LONGEST_BACKOFF))
                }
                _ => {
                    METRICS.sink_delivery(name, "dead_lettered");
                    warn!(
                        sink = name,
                        event_id = %marker.event_id,
                        revision = marker.revision,
                        attempts,
                        error = %failure.detail,
                        "a release marker is dead-lettered"
                    );
                    break vec![Record::DeadLettered(DeadLetter {
                        sink: name.to_string(),
                        revision: marker.revision,
                        event_id: marker.event_id,
                        attempts,
                        replica: self.replica.clone(),
                        error: failure.detail,
                    })];
                }
            };
            METRICS.sink_delivery(name, "retried");
            info!(
                sink = name,
                event_id = %marker.event_id,
                attempts,
                wait_ms = wait.as_millis() as u64,
                error = %failure.detail,
                "a release marker will be sent again"
            );
            tokio::time::sleep(wait).await;
        };
        let delivered = matches!(records[0], Record::Delivered { .. });
        match self.deliveries.record(&self.replica, &records).await? {
            Ok(()) => Ok(Some(delivered)),
            Err(_) => Ok(None),
        }
    }

    /// The start (its event and services) of the deployment a finish or rollback ends: the
    /// deployments model says at which revision it started, the ledger what it was.
    async fn start_of(
        &self,
        recorded: &Recorded,
    ) -> Result<Option<(Start, Vec<ServiceName>)>, SinkError> {
        let Some(ticket) = recorded.event.ticket().cloned() else {
            return Ok(None);
        };
        let revision = recorded.revision;
        let stored = self.followed.stored().clone();
        let filter = DeploymentFilter {
            ticket: Some(ticket),
            ..DeploymentFilter::default()
        };
        // Every release of the ticket up to the event, page by page (a ticket released again
        // and again has many): the start is the latest before it.
        let found = tokio::task::spawn_blocking(move || {
            stored.read(|reader| {
                let mut latest = None;
                let mut after = None;
                loop {
                    let page = reader.deployments(&filter, after, Some(revision), 100)?;
                    let next = page.next_cursor;
                    let page = reader.values(page)?;
                    latest = page
                        .items
                        .iter()
                        .filter_map(|d| d.started_revision)
                        .filter(|r| *r < revision)
                        .chain(latest)
                        .max();
                    match next {
                        Some(next) => after = Some(next),
                        None => return Ok(latest),
                    }
                }
            })
        })
        .await
        .map_err(|e| SinkError::Models(e.to_string()))?
        .map_err(|e: crate::models::ModelsError| SinkError::Models(e.to_string()))?;
        let Some(started) = found else {
            return Ok(None);
        };
        let raw = self
            .store
            .read(
                &self.stream,
                Direction::Forwards,
                ReadFrom::Revision(started),
                1,
            )
            .await?;
        let Some(raw) = raw.first() else {
            return Ok(None);
        };
        let start = envelope::decode(raw).map_err(|e| SinkError::Decode(e.to_string()))?;
        let Event::DeploymentStarted { services, .. } = start.event else {
            return Ok(None);
        };
        Ok(Some((
            Start {
                event_id: start.id,
                at: start.metadata.recorded_at,
            },
            services,
        )))
    }
}
