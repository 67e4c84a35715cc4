//! Appends: decided against the stream's id index, sent with the stream state the index knows,
//! confirmed (by reading back when the ids may have been sent by another writer).

use kurrentdb::{AppendToStreamOptions, EventData, StreamState, WriteResult};
use uuid::Uuid;

use super::Shared;
use super::connection::{BUDGET, Connection};
use super::convert::event_data;
use super::errors::Fail;
use super::index::StreamIndex;
use crate::store::{AppendResult, Direction, ExpectedRevision, NewEvent, ReadFrom, StoreError};

/// Events per read while the id index catches up.
const PAGE: usize = 1000;

impl Shared {
    pub(super) async fn append_once(
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
}

/// Whether the id is of a kind made for one event only (time-based or random: UUID versions 1,
/// 4, 6 and 7), so no other writer sends it with other bytes. Name-based ids (versions 3 and 5,
/// like the ledger's delivery ids) and ids of any other shape can come from several writers.
fn minted_once(id: Uuid) -> bool {
    id.get_variant() == uuid::Variant::RFC4122 && matches!(id.get_version_num(), 1 | 4 | 6 | 7)
}

fn repeat(first_revision: u64, last_revision: u64) -> AppendResult {
    AppendResult {
        first_revision,
        last_revision,
        written: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
