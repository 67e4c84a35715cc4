//! The `Streams` service: appends (single and batched), reads, catch-up subscriptions, deletes.
//! Each RPC lives in its own module; this one only admits the call and dispatches.

mod append;
mod batch_append;
mod delete;
mod read;
mod subscribe;

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::streams::streams_server::Streams;
use crate::proto::streams::{
    AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp, ReadReq,
    ReadResp, TombstoneReq, TombstoneResp,
};
use crate::shared::{Needs, Shared};

/// The largest total of event data one append may carry (the server's default `MaxAppendSize`).
pub(crate) const MAX_APPEND_SIZE: usize = 1_048_576;

pub(crate) struct StreamsService {
    shared: Arc<Shared>,
}

impl StreamsService {
    pub fn new(shared: Arc<Shared>) -> Self {
        StreamsService { shared }
    }
}

#[tonic::async_trait]
impl Streams for StreamsService {
    type ReadStream = ReceiverStream<Result<ReadResp, Status>>;
    type BatchAppendStream = ReceiverStream<Result<BatchAppendResp, Status>>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        self.shared.admit("Streams/Read", Needs::Leader).await?;
        read::read(self.shared.clone(), request.into_inner()).map(Response::new)
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        self.shared.admit("Streams/Append", Needs::Leader).await?;
        append::append(&self.shared, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        self.shared.admit("Streams/Delete", Needs::Leader).await?;
        delete::delete(&self.shared, request.into_inner()).map(Response::new)
    }

    async fn tombstone(
        &self,
        request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        self.shared
            .admit("Streams/Tombstone", Needs::Leader)
            .await?;
        delete::tombstone(&self.shared, request.into_inner()).map(Response::new)
    }

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        self.shared
            .admit("Streams/BatchAppend", Needs::Leader)
            .await?;
        Ok(Response::new(batch_append::batch_append(
            self.shared.clone(),
            request.into_inner(),
        )))
    }
}
