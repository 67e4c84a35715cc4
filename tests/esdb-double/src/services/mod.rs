//! The gRPC services the double serves, one module per service. Anything else a client asks
//! (users, operations, persistent subscriptions, monitoring) is answered `UNIMPLEMENTED` by the
//! router, and `ServerFeatures` does not list it.

pub(crate) mod gossip;
pub(crate) mod projections;
pub(crate) mod server_features;
pub(crate) mod streams;

use std::sync::Arc;

use tonic::service::Routes;

use crate::proto::gossip::gossip_server::GossipServer;
use crate::proto::projections::projections_server::ProjectionsServer;
use crate::proto::server_features::server_features_server::ServerFeaturesServer;
use crate::proto::streams::streams_server::StreamsServer;
use crate::shared::Shared;

/// The router of one double: every service over the same shared state.
pub(crate) fn routes(shared: &Arc<Shared>) -> Routes {
    Routes::new(ServerFeaturesServer::new(
        server_features::ServerFeaturesService::new(shared.clone()),
    ))
    .add_service(StreamsServer::new(streams::StreamsService::new(
        shared.clone(),
    )))
    .add_service(ProjectionsServer::new(
        projections::ProjectionsService::new(shared.clone()),
    ))
    .add_service(GossipServer::new(gossip::GossipService::new(
        shared.clone(),
    )))
    .prepare()
}
