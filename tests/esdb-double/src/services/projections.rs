//! `Projections`: the management calls the client's projection API makes. The double keeps what
//! it is sent (name, query, mode, emit and tracking options, enabled) so a test can read it back;
//! it never runs a projection, so `State` and `Result` are `UNIMPLEMENTED`.
//!
//! Answers follow the server: an unknown name is `NOT_FOUND` ("Projection 'x' not found"); creating
//! a name that exists fails with `UNKNOWN` (the server's projection manager answers
//! `OperationFailed` where the gRPC layer expects `Updated`); and a continuous projection created
//! with `track_emitted_streams` but without `emit_enabled` is refused, as recent servers do. The
//! client's proto has no `emit_enabled` on create (it enables emitting with an update afterwards),
//! so through the Rust client `track_emitted_streams(true)` always fails on such servers.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::errors;
use crate::proto::projections::projections_server::Projections;
use crate::proto::projections::{
    CreateReq, CreateResp, DeleteReq, DeleteResp, DisableReq, DisableResp, EnableReq, EnableResp,
    ResetReq, ResetResp, ResultReq, ResultResp, StateReq, StateResp, StatisticsReq, StatisticsResp,
    UpdateReq, UpdateResp, create_req, statistics_req, statistics_resp, update_req,
};
use crate::shared::{Needs, Shared};

/// A projection as the double was told to keep it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionRecord {
    pub name: String,
    pub query: String,
    /// "Continuous", "Transient" or "OneTime".
    pub mode: String,
    pub emit_enabled: bool,
    pub track_emitted_streams: bool,
    pub engine_version: i32,
    /// Created enabled; `Disable` and `Enable` flip it.
    pub enabled: bool,
    /// How many times it was created or updated.
    pub version: i64,
}

pub(crate) struct ProjectionsService {
    shared: Arc<Shared>,
}

impl ProjectionsService {
    pub fn new(shared: Arc<Shared>) -> Self {
        ProjectionsService { shared }
    }

    /// Applies `change` to the named projection, or answers `NOT_FOUND`.
    fn with_projection(
        &self,
        name: &str,
        change: impl FnOnce(&mut ProjectionRecord),
    ) -> Result<(), Status> {
        let mut projections = self.shared.projections();
        let record = projections
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| not_found(name))?;
        change(record);
        Ok(())
    }
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("Projection '{name}' not found"))
}

fn options<T>(options: Option<T>) -> Result<T, Status> {
    options.ok_or_else(|| errors::invalid_argument("options are required"))
}

fn details(p: &ProjectionRecord) -> statistics_resp::Details {
    statistics_resp::Details {
        core_processing_time: 0,
        version: p.version,
        epoch: -1,
        effective_name: p.name.clone(),
        writes_in_progress: 0,
        reads_in_progress: 0,
        partitions_cached: 0,
        status: if p.enabled { "Running" } else { "Stopped" }.to_owned(),
        state_reason: String::new(),
        name: p.name.clone(),
        mode: p.mode.clone(),
        position: String::new(),
        progress: if p.enabled { 100.0 } else { 0.0 },
        last_checkpoint: String::new(),
        events_processed_after_restart: 0,
        checkpoint_status: String::new(),
        buffered_events: 0,
        write_pending_events_before_checkpoint: 0,
        write_pending_events_after_checkpoint: 0,
    }
}

#[tonic::async_trait]
impl Projections for ProjectionsService {
    type StatisticsStream = ReceiverStream<Result<StatisticsResp, Status>>;

    async fn create(&self, request: Request<CreateReq>) -> Result<Response<CreateResp>, Status> {
        self.shared
            .admit("Projections/Create", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        let (name, mode, track_emitted_streams) = match options.mode {
            Some(create_req::options::Mode::Continuous(c)) => {
                (c.name, "Continuous", c.track_emitted_streams)
            }
            Some(create_req::options::Mode::Transient(t)) => (t.name, "Transient", false),
            Some(create_req::options::Mode::OneTime(())) => {
                (uuid::Uuid::new_v4().to_string(), "OneTime", false)
            }
            None => return Err(errors::invalid_argument("a projection mode is required")),
        };
        if track_emitted_streams {
            return Err(Status::unknown(
                "Exception was thrown by handler. InvalidOperationException: EmitEnabled must be set to true to track emitted streams.",
            ));
        }
        let mut projections = self.shared.projections();
        if projections.iter().any(|p| p.name == name) {
            return Err(Status::unknown(
                "Envelope callback expected Updated, received OperationFailed instead",
            ));
        }
        projections.push(ProjectionRecord {
            name,
            query: options.query,
            mode: mode.to_owned(),
            emit_enabled: false,
            track_emitted_streams,
            engine_version: options.engine_version,
            enabled: true,
            version: 1,
        });
        Ok(Response::new(CreateResp {}))
    }

    async fn update(&self, request: Request<UpdateReq>) -> Result<Response<UpdateResp>, Status> {
        self.shared
            .admit("Projections/Update", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        self.with_projection(&options.name, |p| {
            p.query = options.query;
            if let Some(update_req::options::EmitOption::EmitEnabled(emit)) = options.emit_option {
                p.emit_enabled = emit;
            }
            p.version += 1;
        })?;
        Ok(Response::new(UpdateResp {}))
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        self.shared
            .admit("Projections/Delete", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        let mut projections = self.shared.projections();
        let before = projections.len();
        projections.retain(|p| p.name != options.name);
        if projections.len() == before {
            return Err(not_found(&options.name));
        }
        Ok(Response::new(DeleteResp {}))
    }

    async fn statistics(
        &self,
        request: Request<StatisticsReq>,
    ) -> Result<Response<Self::StatisticsStream>, Status> {
        use statistics_req::options::Mode;
        self.shared
            .admit("Projections/Statistics", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        let projections = self.shared.projections().clone();
        let selected: Vec<&ProjectionRecord> = match &options.mode {
            Some(Mode::Name(name)) => {
                vec![
                    projections
                        .iter()
                        .find(|p| &p.name == name)
                        .ok_or_else(|| not_found(name))?,
                ]
            }
            Some(Mode::All(())) | None => projections.iter().collect(),
            Some(Mode::Continuous(())) => projections
                .iter()
                .filter(|p| p.mode == "Continuous")
                .collect(),
            Some(Mode::Transient(())) => projections
                .iter()
                .filter(|p| p.mode == "Transient")
                .collect(),
            Some(Mode::OneTime(())) => projections.iter().filter(|p| p.mode == "OneTime").collect(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(selected.len().max(1));
        for p in selected {
            let _ = tx.try_send(Ok(StatisticsResp {
                details: Some(details(p)),
            }));
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn disable(&self, request: Request<DisableReq>) -> Result<Response<DisableResp>, Status> {
        self.shared
            .admit("Projections/Disable", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        self.with_projection(&options.name, |p| p.enabled = false)?;
        Ok(Response::new(DisableResp {}))
    }

    async fn enable(&self, request: Request<EnableReq>) -> Result<Response<EnableResp>, Status> {
        self.shared
            .admit("Projections/Enable", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        self.with_projection(&options.name, |p| p.enabled = true)?;
        Ok(Response::new(EnableResp {}))
    }

    async fn reset(&self, request: Request<ResetReq>) -> Result<Response<ResetResp>, Status> {
        self.shared
            .admit("Projections/Reset", Needs::Leader)
            .await?;
        let options = options(request.into_inner().options)?;
        self.with_projection(&options.name, |_| {})?;
        Ok(Response::new(ResetResp {}))
    }

    async fn state(&self, _request: Request<StateReq>) -> Result<Response<StateResp>, Status> {
        self.shared
            .admit("Projections/State", Needs::Leader)
            .await?;
        Err(Status::unimplemented("the double does not run projections"))
    }

    async fn result(&self, _request: Request<ResultReq>) -> Result<Response<ResultResp>, Status> {
        self.shared
            .admit("Projections/Result", Needs::Leader)
            .await?;
        Err(Status::unimplemented("the double does not run projections"))
    }

    async fn restart_subsystem(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        self.shared
            .admit("Projections/RestartSubsystem", Needs::Leader)
            .await?;
        Ok(Response::new(()))
    }
}
