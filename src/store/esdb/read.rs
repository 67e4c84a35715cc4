//! One read of a stream, as the port's events; a missing stream reads as empty.

use kurrentdb::{ReadStreamOptions, StreamPosition};

use super::Shared;
use super::connection::{BUDGET, Connection};
use super::convert::recorded;
use super::errors::Fail;
use crate::store::{Direction, ReadFrom, RecordedEvent};

impl Shared {
    pub(super) async fn read_once(
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
    pub(super) fn observe(&self, stream: &str, from: u64, events: &[RecordedEvent]) {
        if let Ok(mut index) = self.index(stream).try_lock() {
            index.absorb(from, events.iter().map(|e| (e.id, e.revision)));
        }
    }
}
