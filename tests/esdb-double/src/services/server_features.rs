//! `ServerFeatures.GetSupportedMethods`: what a client asks first, to learn the server's version
//! and which optional methods (batch append, ...) it may use. Answered like the server does: the
//! version as `major.minor.patch`, and one entry per method, names lower-cased, with the same
//! feature tags the server adds. Servers before 21.10 lack the service; a fault switch answers
//! `UNIMPLEMENTED` like them.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::proto::server_features::server_features_server::ServerFeatures;
use crate::proto::server_features::{SupportedMethod, SupportedMethods};
use crate::shared::{Needs, Shared};

/// The server version the double answers as.
pub const SERVER_VERSION: &str = "24.10.0";

const STREAMS: &str = "event_store.client.streams.streams";
const PROJECTIONS: &str = "event_store.client.projections.projections";
const GOSSIP: &str = "event_store.client.gossip.gossip";
const FEATURES: &str = "event_store.client.server_features.serverfeatures";

/// (service, method, features), for every method the double implements.
const METHODS: &[(&str, &str, &[&str])] = &[
    (STREAMS, "read", &["position", "events"]),
    (STREAMS, "append", &[]),
    (STREAMS, "delete", &[]),
    (STREAMS, "tombstone", &[]),
    (STREAMS, "batchappend", &["deadline_duration"]),
    (PROJECTIONS, "create", &["track_emitted_streams"]),
    (PROJECTIONS, "update", &[]),
    (PROJECTIONS, "delete", &[]),
    (PROJECTIONS, "statistics", &[]),
    (PROJECTIONS, "disable", &[]),
    (PROJECTIONS, "enable", &[]),
    (PROJECTIONS, "reset", &[]),
    (PROJECTIONS, "restartsubsystem", &[]),
    (GOSSIP, "read", &[]),
    (FEATURES, "getsupportedmethods", &[]),
];

pub(crate) struct ServerFeaturesService {
    shared: Arc<Shared>,
}

impl ServerFeaturesService {
    pub fn new(shared: Arc<Shared>) -> Self {
        ServerFeaturesService { shared }
    }
}

#[tonic::async_trait]
impl ServerFeatures for ServerFeaturesService {
    async fn get_supported_methods(
        &self,
        _request: Request<()>,
    ) -> Result<Response<SupportedMethods>, Status> {
        self.shared
            .admit("ServerFeatures/GetSupportedMethods", Needs::AnyNode)
            .await?;
        if self.shared.faults.supported_methods_unimplemented() {
            return Err(Status::unimplemented(
                "Service is unimplemented: event_store.client.server_features.ServerFeatures",
            ));
        }
        let methods = METHODS
            .iter()
            .map(|(service, method, features)| SupportedMethod {
                method_name: (*method).to_owned(),
                service_name: (*service).to_owned(),
                features: features.iter().map(|f| (*f).to_owned()).collect(),
            })
            .collect();
        Ok(Response::new(SupportedMethods {
            methods,
            event_store_server_version: SERVER_VERSION.to_owned(),
        }))
    }
}
