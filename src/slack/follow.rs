//! Steps recorded other than through this front (the CLI's `dobrobot chat` on the same store,
//! another process) shown in Slack: a subscription to the ledger stream hands each event to
//! the front (`SlackFront::fold`), and each one recorded after start-up to
//! `SlackFront::show_recorded`, which redraws the release's message and replies in its thread.
//! The history read before the subscription caught up only builds the state.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::envelope;
use crate::store::{EventStore, SubscriptionItem};

use super::front::SlackFront;

/// Follows `stream` for `front` until the task is aborted. After a failure it subscribes again
/// after the last event it read, so nothing is shown twice or missed.
pub fn follow_ledger(
    front: Arc<SlackFront>,
    store: Arc<dyn EventStore>,
    stream: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<u64> = None;
        let mut live = false;
        loop {
            let mut subscription = match store.subscribe(&stream, last).await {
                Ok(s) => s,
                Err(error) => {
                    warn!(%error, "the Slack front cannot follow the ledger; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(item) = subscription.next().await {
                match item {
                    Ok(SubscriptionItem::CaughtUp) => {
                        if !live {
                            info!(%stream, revision = ?last, "the Slack front follows the ledger");
                        }
                        live = true;
                    }
                    Ok(SubscriptionItem::Event(raw)) => {
                        let recorded = match envelope::decode(&raw) {
                            Ok(recorded) => recorded,
                            Err(error) => {
                                warn!(%error, "the ledger cannot be read; the Slack front stops following it");
                                return;
                            }
                        };
                        front.fold(&recorded);
                        if live {
                            front.show_recorded(&recorded).await;
                        }
                        last = Some(recorded.revision);
                    }
                    Err(error) => {
                        warn!(%error, "the Slack front's subscription dropped; resubscribing");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}
