//! `Gossip.Read`: the cluster as this node sees it, a single alive leader (itself). Clients call
//! it only in cluster mode (several hosts, or `+discover`); with one host they connect directly.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::convert::uuid_to_proto;
use crate::proto::gossip::gossip_server::Gossip;
use crate::proto::gossip::member_info::VNodeState;
use crate::proto::gossip::{ClusterInfo, EndPoint, MemberInfo};
use crate::shared::{Needs, Shared};

pub(crate) struct GossipService {
    shared: Arc<Shared>,
    instance_id: Uuid,
}

impl GossipService {
    pub fn new(shared: Arc<Shared>) -> Self {
        GossipService {
            shared,
            instance_id: Uuid::new_v4(),
        }
    }
}

#[tonic::async_trait]
impl Gossip for GossipService {
    async fn read(&self, _request: Request<()>) -> Result<Response<ClusterInfo>, Status> {
        self.shared.admit("Gossip/Read", Needs::AnyNode).await?;
        let ticks = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let me = MemberInfo {
            instance_id: Some(uuid_to_proto(self.instance_id, false)),
            time_stamp: ticks,
            state: VNodeState::Leader as i32,
            is_alive: true,
            http_end_point: Some(EndPoint {
                address: self.shared.addr.ip().to_string(),
                port: u32::from(self.shared.addr.port()),
            }),
        };
        Ok(Response::new(ClusterInfo { members: vec![me] }))
    }
}
