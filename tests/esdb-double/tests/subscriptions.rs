//! Catch-up subscriptions through the real `kurrentdb` client: confirmation, history, caught up,
//! live events; starting points; a tombstone ends them.

mod support;

use kurrentdb::{
    Error, StreamPosition, SubscribeToStreamOptions, Subscription, SubscriptionEvent,
    TombstoneStreamOptions,
};
use support::{event, started, within};

/// The next subscription event that is not an event (`Confirmed`, `CaughtUp`, ...), or the n of
/// an event.
#[derive(Debug, PartialEq)]
enum Seen {
    Confirmed,
    Event(u64, u64),
    CaughtUp(Option<u64>),
    Other,
}

/// The client's default starting point is the end of the stream.
fn from_start() -> SubscribeToStreamOptions {
    SubscribeToStreamOptions::default().start_from(StreamPosition::Start)
}

async fn next(subscription: &mut Subscription) -> kurrentdb::Result<Seen> {
    let seen = within("subscription event", subscription.next_subscription_event()).await?;
    Ok(match seen {
        SubscriptionEvent::Confirmed(_) => Seen::Confirmed,
        SubscriptionEvent::EventAppeared(e) => {
            let data: serde_json::Value = e.get_original_event().as_json().unwrap();
            Seen::Event(e.get_original_event().revision, data["n"].as_u64().unwrap())
        }
        SubscriptionEvent::CaughtUp(Some(c)) => Seen::CaughtUp(c.stream_revision),
        SubscriptionEvent::CaughtUp(None) => Seen::CaughtUp(None),
        _ => Seen::Other,
    })
}

#[tokio::test]
async fn history_then_caught_up_then_live() {
    let (_double, client) = started().await;
    client
        .append_to_stream("feed", &Default::default(), vec![event(10), event(11)])
        .await
        .unwrap();
    let mut subscription = client.subscribe_to_stream("feed", &from_start()).await;
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Confirmed);
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(0, 10));
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(1, 11));
    assert_eq!(
        next(&mut subscription).await.unwrap(),
        Seen::CaughtUp(Some(1))
    );

    client
        .append_to_stream("feed", &Default::default(), vec![event(12), event(13)])
        .await
        .unwrap();
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(2, 12));
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(3, 13));
}

#[tokio::test]
async fn subscribing_from_a_revision_delivers_what_follows_it() {
    let (_double, client) = started().await;
    let events: Vec<_> = (0..5).map(event).collect();
    client
        .append_to_stream("feed", &Default::default(), events)
        .await
        .unwrap();
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Position(2));
    let mut subscription = client.subscribe_to_stream("feed", &options).await;
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Confirmed);
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(3, 3));
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(4, 4));
    assert_eq!(
        next(&mut subscription).await.unwrap(),
        Seen::CaughtUp(Some(4))
    );

    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::End);
    let mut from_end = client.subscribe_to_stream("feed", &options).await;
    assert_eq!(next(&mut from_end).await.unwrap(), Seen::Confirmed);
    assert_eq!(next(&mut from_end).await.unwrap(), Seen::CaughtUp(Some(4)));
    client
        .append_to_stream("feed", &Default::default(), event(5))
        .await
        .unwrap();
    assert_eq!(next(&mut from_end).await.unwrap(), Seen::Event(5, 5));
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(5, 5));
}

#[tokio::test]
async fn a_subscription_to_a_missing_stream_waits_for_it() {
    let (_double, client) = started().await;
    let mut subscription = client.subscribe_to_stream("later", &from_start()).await;
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Confirmed);
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::CaughtUp(None));
    client
        .append_to_stream("later", &Default::default(), event(0))
        .await
        .unwrap();
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(0, 0));
}

#[tokio::test]
async fn a_long_history_arrives_in_order() {
    let (_double, client) = started().await;
    for chunk in 0..4u32 {
        let events: Vec<_> = (chunk * 500..(chunk + 1) * 500).map(event).collect();
        client
            .append_to_stream("long", &Default::default(), events)
            .await
            .unwrap();
    }
    let mut subscription = client.subscribe_to_stream("long", &from_start()).await;
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Confirmed);
    for n in 0..2000 {
        assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(n, n));
    }
    assert_eq!(
        next(&mut subscription).await.unwrap(),
        Seen::CaughtUp(Some(1999))
    );
}

#[tokio::test]
async fn a_tombstone_ends_the_subscription_with_stream_deleted() {
    let (_double, client) = started().await;
    client
        .append_to_stream("doomed", &Default::default(), event(0))
        .await
        .unwrap();
    let mut subscription = client.subscribe_to_stream("doomed", &from_start()).await;
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Confirmed);
    assert_eq!(next(&mut subscription).await.unwrap(), Seen::Event(0, 0));
    assert_eq!(
        next(&mut subscription).await.unwrap(),
        Seen::CaughtUp(Some(0))
    );
    client
        .tombstone_stream("doomed", &TombstoneStreamOptions::default())
        .await
        .unwrap();
    let ended = next(&mut subscription).await;
    assert!(matches!(ended, Err(Error::ResourceDeleted)), "{ended:?}");
}
