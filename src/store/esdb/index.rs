//! The id index of one stream: what this store knows of the stream's event ids, from which an
//! append decides whether its batch is new, a repeat, or partly stored, and with which stream
//! state to send it (see the module doc of `esdb`).

use std::collections::HashMap;

use kurrentdb::StreamState;
use uuid::Uuid;

use crate::store::{ExpectedRevision, NewEvent};

/// What this store knows of a stream's ids. Appends to the stream hold its lock throughout.
#[derive(Default)]
pub(super) struct StreamIndex {
    /// The revision of every event id seen, from the stream's first event to `last`.
    pub(super) ids: HashMap<Uuid, u64>,
    /// The last revision seen; `None` with `loaded`: the stream did not exist when last read.
    pub(super) last: Option<u64>,
    /// `ids` hold the stream from its start to `last`.
    pub(super) loaded: bool,
    /// An append may have been written without our seeing the answer: read before trusting
    /// `last`.
    pub(super) uncertain: bool,
}

impl StreamIndex {
    /// The revision after the last one seen: where the index goes on from.
    pub(super) fn next(&self) -> u64 {
        self.last.map_or(0, |r| r + 1)
    }

    /// Takes in events read forwards from `from`, if they go on from what is known.
    pub(super) fn absorb(&mut self, from: u64, events: impl IntoIterator<Item = (Uuid, u64)>) {
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
    pub(super) fn find(&self, events: &[NewEvent]) -> Result<Option<u64>, Uuid> {
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
    pub(super) fn target(&self, expected: ExpectedRevision) -> Option<StreamState> {
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
}
