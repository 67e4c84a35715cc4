//! Stopping and restarting the double on the same port, with the data kept, as clients see it.

mod support;

use kurrentdb::{Error, StreamPosition, SubscribeToStreamOptions};
use support::{client, event, numbers, read_all_of, started, within};

#[tokio::test]
async fn a_restart_serves_the_same_data_on_the_same_port() {
    let (mut double, client) = started().await;
    let url = double.url();
    client
        .append_to_stream("kept", &Default::default(), event(0))
        .await
        .unwrap();

    double.stop().await;
    assert!(tokio::net::TcpStream::connect(double.addr()).await.is_err());
    let refused = client
        .append_to_stream("kept", &Default::default(), event(1))
        .await;
    assert!(matches!(refused, Err(Error::ServerError(_))), "{refused:?}");

    double.restart().await;
    assert_eq!(double.url(), url);
    client
        .append_to_stream("kept", &Default::default(), event(1))
        .await
        .unwrap();
    assert_eq!(
        numbers(&read_all_of(&client, "kept").await.unwrap()),
        [0, 1]
    );
}

#[tokio::test]
async fn a_stop_ends_live_subscriptions_and_they_resume_after_the_restart() {
    let (mut double, client) = started().await;
    client
        .append_to_stream("feed", &Default::default(), event(0))
        .await
        .unwrap();
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("feed", &options).await;
    let first = within("first event", subscription.next()).await.unwrap();

    double.stop().await;
    let ended = within("the end of the subscription", subscription.next()).await;
    assert!(ended.is_err(), "{ended:?}");

    double.restart().await;
    client
        .append_to_stream("feed", &Default::default(), event(1))
        .await
        .unwrap();
    let from = StreamPosition::Position(first.get_original_event().revision);
    let options = SubscribeToStreamOptions::default().start_from(from);
    let mut resumed = client.subscribe_to_stream("feed", &options).await;
    let next = within("resumed", resumed.next()).await.unwrap();
    assert_eq!(next.get_original_event().revision, 1);
}

#[tokio::test]
async fn a_client_built_while_the_server_is_down_stays_closed() {
    let (mut double, _first_client) = started().await;
    double.stop().await;
    let client = client(&double);
    let down = client
        .append_to_stream("s", &Default::default(), event(0))
        .await;
    assert!(
        matches!(down, Err(Error::GrpcConnectionError(_))),
        "{down:?}"
    );

    double.restart().await;
    let after = client
        .append_to_stream("s", &Default::default(), event(0))
        .await;
    assert!(matches!(after, Err(Error::ConnectionClosed)), "{after:?}");
}

#[tokio::test]
async fn dropping_the_double_closes_its_port() {
    let (double, _client) = started().await;
    let addr = double.addr();
    drop(double);
    let mut closed = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(closed);
}
