//! Catch-up subscriptions: history from a revision, `CaughtUp` once, then live events; see the
//! module doc of `esdb` for when `CaughtUp` comes and why the client's resubscription is off.

use std::sync::Arc;

use kurrentdb::{ResolvedEvent, StreamPosition, SubscribeToStreamOptions, SubscriptionEvent};

use super::Shared;
use super::convert::recorded;
use super::errors::Fail;
use crate::store::{Direction, ReadFrom, StoreError, SubscriptionItem};

impl Shared {
    pub(super) async fn start_feed(
        self: &Arc<Self>,
        stream: &str,
        after: Option<u64>,
    ) -> Result<Feed, Fail> {
        let connection = self.connection();
        let history_end = self
            .read_once(&connection, stream, Direction::Backwards, ReadFrom::End, 1)
            .await?
            .first()
            .map(|e| e.revision);
        let options = SubscribeToStreamOptions::default()
            .start_from(after.map_or(StreamPosition::Start, StreamPosition::Position));
        let mut subscription = connection
            .client
            .subscribe_to_stream(stream, &options)
            .await;
        let early = loop {
            match subscription.next_subscription_event().await {
                Ok(SubscriptionEvent::Confirmed(_)) => break None,
                // A server that does not confirm starts with the first event.
                Ok(SubscriptionEvent::EventAppeared(event)) => break Some(event),
                Ok(_) => {}
                Err(e) => return Err(self.fail(connection.generation, e)),
            }
        };
        Ok(Feed {
            shared: Arc::clone(self),
            generation: connection.generation,
            stream: stream.to_string(),
            subscription,
            history_end,
            delivered: after,
            caught_up: false,
            early,
            done: false,
        })
    }
}

/// A running catch-up subscription.
pub(super) struct Feed {
    shared: Arc<Shared>,
    generation: u64,
    stream: String,
    subscription: kurrentdb::Subscription,
    /// The stream's last revision when the subscription started: the end of its history.
    history_end: Option<u64>,
    delivered: Option<u64>,
    caught_up: bool,
    /// An event that came before any confirmation.
    early: Option<ResolvedEvent>,
    /// The subscription failed and said so; it yields nothing more.
    done: bool,
}

impl Feed {
    pub(super) async fn next(&mut self) -> Option<Result<SubscriptionItem, StoreError>> {
        if self.done {
            return None;
        }
        if !self.caught_up && self.history_delivered() {
            self.caught_up = true;
            return Some(Ok(SubscriptionItem::CaughtUp));
        }
        loop {
            let next = match self.early.take() {
                Some(event) => Ok(SubscriptionEvent::EventAppeared(event)),
                None => self.subscription.next_subscription_event().await,
            };
            match next {
                Ok(SubscriptionEvent::EventAppeared(resolved)) => {
                    return Some(match recorded(&self.stream, &resolved) {
                        Ok(event) => {
                            self.delivered = Some(event.revision);
                            Ok(SubscriptionItem::Event(event))
                        }
                        Err(error) => {
                            self.done = true;
                            Err(error)
                        }
                    });
                }
                Ok(SubscriptionEvent::CaughtUp(_)) if !self.caught_up => {
                    self.caught_up = true;
                    return Some(Ok(SubscriptionItem::CaughtUp));
                }
                Ok(_) => {}
                Err(error) => {
                    self.done = true;
                    let error = match self.shared.fail(self.generation, error) {
                        Fail::Store(error) => error,
                        Fail::NotLeader(leader) => StoreError::Unavailable(format!(
                            "EventStoreDB at {}: the node is not the leader ({leader} is)",
                            self.shared.url
                        )),
                    };
                    return Some(Err(error));
                }
            }
        }
    }

    fn history_delivered(&self) -> bool {
        match self.history_end {
            None => true,
            Some(end) => self.delivered.is_some_and(|d| d >= end),
        }
    }
}
