//! The embedded backend: one SQLite file (WAL, synchronous=FULL).
use std::path::Path;

use async_trait::async_trait;

use super::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
    StoreError, Subscription,
};

pub struct SqliteStore {}

impl SqliteStore {
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let _ = path.as_ref();
        todo!("helper implements")
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        _stream: &str,
        _expected: ExpectedRevision,
        _events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        todo!()
    }
    async fn read(
        &self,
        _stream: &str,
        _direction: Direction,
        _from: ReadFrom,
        _max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        todo!()
    }
    async fn subscribe(&self, _stream: &str, _after: Option<u64>) -> Result<Subscription, StoreError> {
        todo!()
    }
}
