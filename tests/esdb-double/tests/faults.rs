//! Each fault switch, seen through the real `kurrentdb` client.

mod support;

use std::time::Duration;

use kurrentdb::{AppendToStreamOptions, Error, StreamPosition, SubscribeToStreamOptions};
use support::{client, event, install_crypto, read_all_of, started, within};

use esdb_double::Double;

#[tokio::test]
async fn unavailable_refuses_calls_until_switched_off() {
    let (double, client) = started().await;
    client
        .append_to_stream("s", &Default::default(), event(0))
        .await
        .unwrap();

    double.faults().set_unavailable(true);
    let refused = client
        .append_to_stream("s", &Default::default(), event(1))
        .await;
    assert!(
        matches!(&refused, Err(Error::ServerError(m)) if m.contains("Server Is Not Ready")),
        "{refused:?}"
    );
    assert!(matches!(
        read_all_of(&client, "s").await,
        Err(Error::ServerError(_))
    ));

    double.faults().set_unavailable(false);
    client
        .append_to_stream("s", &Default::default(), event(1))
        .await
        .unwrap();
    assert_eq!(double.events("s").len(), 2);
}

#[tokio::test]
async fn a_client_that_meets_an_unavailable_node_first_is_closed_for_good() {
    install_crypto();
    let double = Double::start().await;
    double.faults().set_unavailable(true);
    let client = client(&double);
    let first = client
        .append_to_stream("s", &Default::default(), event(0))
        .await;
    assert!(
        matches!(first, Err(Error::GrpcConnectionError(_))),
        "{first:?}"
    );

    double.faults().set_unavailable(false);
    let after = client
        .append_to_stream("s", &Default::default(), event(0))
        .await;
    assert!(matches!(after, Err(Error::ConnectionClosed)), "{after:?}");
}

#[tokio::test]
async fn not_leader_names_the_leader_and_the_client_reconnects_to_it() {
    let (double, client) = started().await;
    client
        .append_to_stream("s", &Default::default(), event(0))
        .await
        .unwrap();

    double.faults().set_not_leader(true);
    let refused = client
        .append_to_stream("s", &Default::default(), event(1))
        .await;
    match refused {
        Err(Error::NotLeaderException(leader)) => {
            assert_eq!(leader.host, double.addr().ip().to_string());
            assert_eq!(leader.port, u32::from(double.addr().port()));
        }
        other => panic!("expected not-leader, got {other:?}"),
    }

    double.faults().set_not_leader(false);
    client
        .append_to_stream("s", &Default::default(), event(1))
        .await
        .unwrap();
    let asked_features = double
        .calls()
        .iter()
        .filter(|c| *c == "ServerFeatures/GetSupportedMethods")
        .count();
    assert_eq!(asked_features, 2, "{:?}", double.calls());
}

#[tokio::test]
async fn a_delayed_append_the_client_gave_up_on_writes_nothing() {
    let (double, client) = started().await;
    client.server_info().await.unwrap();
    double.faults().set_delay(Duration::from_millis(600));
    let options = AppendToStreamOptions::default().deadline(Duration::from_millis(200));
    let gave_up = client.append_to_stream("s", &options, event(0)).await;
    assert!(
        matches!(gave_up, Err(Error::DeadlineExceeded)),
        "{gave_up:?}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(double.events("s").is_empty());

    let waited = client
        .append_to_stream("s", &Default::default(), event(1))
        .await;
    assert!(waited.is_ok(), "{waited:?}");
    double.faults().set_delay(Duration::ZERO);
    assert_eq!(double.events("s").len(), 1);
}

#[tokio::test]
async fn dropped_subscriptions_end_with_an_error_and_can_resubscribe() {
    let (double, client) = started().await;
    client
        .append_to_stream("feed", &Default::default(), event(0))
        .await
        .unwrap();
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("feed", &options).await;
    let first = within("first event", subscription.next()).await.unwrap();
    assert_eq!(first.get_original_event().revision, 0);

    double.faults().drop_subscriptions();
    let dropped = within("the drop", subscription.next()).await;
    assert!(matches!(dropped, Err(Error::ServerError(_))), "{dropped:?}");

    client
        .append_to_stream("feed", &Default::default(), event(1))
        .await
        .unwrap();
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Position(0));
    let mut resumed = client.subscribe_to_stream("feed", &options).await;
    let next = within("resumed", resumed.next()).await.unwrap();
    assert_eq!(next.get_original_event().revision, 1);
}

#[tokio::test]
async fn an_older_server_without_server_features() {
    install_crypto();
    let double = Double::start().await;
    double.faults().set_supported_methods_unimplemented(true);
    let client = client(&double);
    let info = client.server_info().await.unwrap();
    assert_eq!(info.version().to_string(), "0.0.0");
    let batch = client.batch_append(&Default::default()).await;
    assert!(matches!(batch, Err(Error::UnsupportedFeature)));
    client
        .append_to_stream("s", &Default::default(), event(0))
        .await
        .unwrap();
}
