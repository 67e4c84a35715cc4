//! Appends and reads through the real `kurrentdb` client: expected revisions, the wrong expected
//! version answer, idempotent retries, reads in both directions, stream not found, deletes.

mod support;

use esdb_double::SERVER_VERSION;
use kurrentdb::{
    AppendToStreamOptions, CurrentRevision, DeleteStreamOptions, Error, ReadStreamOptions,
    StreamPosition, StreamState, TombstoneStreamOptions,
};
use support::{event, event_with_id, numbers, read, read_all_of, started, within};
use uuid::Uuid;

fn expect(state: StreamState) -> AppendToStreamOptions {
    AppendToStreamOptions::default().stream_state(state)
}

#[tokio::test]
async fn the_client_asks_for_the_server_features_first_and_never_gossips() {
    let (double, client) = started().await;
    let info = within("server info", client.server_info()).await.unwrap();
    assert_eq!(info.version().to_string(), SERVER_VERSION);
    client
        .append_to_stream("s", &Default::default(), event(1))
        .await
        .unwrap();
    assert_eq!(
        double.calls(),
        ["ServerFeatures/GetSupportedMethods", "Streams/Append"]
    );
}

#[tokio::test]
async fn appends_check_each_kind_of_expected_revision() {
    let (_double, client) = started().await;
    let append = |state, n| {
        let client = client.clone();
        async move {
            client
                .append_to_stream("orders", &expect(state), event(n))
                .await
        }
    };

    let missing = client
        .append_to_stream("nothing-here", &expect(StreamState::StreamExists), event(0))
        .await;
    assert!(matches!(
        missing,
        Err(Error::WrongExpectedVersion {
            current: CurrentRevision::NoStream,
            expected: StreamState::StreamExists
        })
    ));
    let exact_on_missing = append(StreamState::StreamRevision(0), 0).await;
    assert!(matches!(
        exact_on_missing,
        Err(Error::WrongExpectedVersion {
            current: CurrentRevision::NoStream,
            ..
        })
    ));

    let first = append(StreamState::NoStream, 0).await.unwrap();
    assert_eq!(first.next_expected_version, 0);
    let again = append(StreamState::NoStream, 1).await;
    assert!(matches!(
        again,
        Err(Error::WrongExpectedVersion {
            current: CurrentRevision::Current(0),
            expected: StreamState::NoStream
        })
    ));
    let second = append(StreamState::StreamRevision(0), 1).await.unwrap();
    assert_eq!(second.next_expected_version, 1);
    assert!(second.position.commit > first.position.commit);
    let stale = append(StreamState::StreamRevision(0), 2).await;
    assert!(matches!(
        stale,
        Err(Error::WrongExpectedVersion {
            current: CurrentRevision::Current(1),
            expected: StreamState::StreamRevision(0)
        })
    ));
    let exists = append(StreamState::StreamExists, 2).await.unwrap();
    assert_eq!(exists.next_expected_version, 2);
    let any = append(StreamState::Any, 3).await.unwrap();
    assert_eq!(any.next_expected_version, 3);

    let events = read_all_of(&client, "orders").await.unwrap();
    assert_eq!(numbers(&events), [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_retried_append_writes_nothing_and_answers_the_original_position() {
    let (double, client) = started().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = || vec![event_with_id(1, a), event_with_id(2, b)];
    let first = client
        .append_to_stream("ledger", &expect(StreamState::NoStream), batch())
        .await
        .unwrap();
    client
        .append_to_stream("ledger", &expect(StreamState::StreamRevision(1)), event(3))
        .await
        .unwrap();

    for state in [StreamState::NoStream, StreamState::Any] {
        let retry = client
            .append_to_stream("ledger", &expect(state), batch())
            .await
            .unwrap();
        assert_eq!(retry.next_expected_version, first.next_expected_version);
        assert_eq!(retry.position, first.position);
    }
    assert_eq!(double.events("ledger").len(), 3);

    // The same first id followed by a new one is not a retry.
    let mixed = client
        .append_to_stream(
            "ledger",
            &expect(StreamState::NoStream),
            vec![event_with_id(1, a), event(9)],
        )
        .await;
    assert!(matches!(
        mixed,
        Err(Error::WrongExpectedVersion {
            current: CurrentRevision::Current(2),
            ..
        })
    ));
}

#[tokio::test]
async fn reads_go_both_ways_from_any_revision_with_a_count() {
    let (_double, client) = started().await;
    let events: Vec<_> = (0..10).map(event).collect();
    client
        .append_to_stream("numbers", &Default::default(), events)
        .await
        .unwrap();

    let forwards = ReadStreamOptions::default().forwards();
    let backwards = ReadStreamOptions::default().backwards();
    let cases = [
        (
            forwards
                .clone()
                .position(StreamPosition::Start)
                .max_count(3),
            vec![0, 1, 2],
        ),
        (
            forwards.clone().position(StreamPosition::Position(7)),
            vec![7, 8, 9],
        ),
        (
            forwards
                .clone()
                .position(StreamPosition::Position(4))
                .max_count(2),
            vec![4, 5],
        ),
        (
            forwards.clone().position(StreamPosition::Position(20)),
            vec![],
        ),
        (
            backwards.clone().position(StreamPosition::End).max_count(3),
            vec![9, 8, 7],
        ),
        (
            backwards.clone().position(StreamPosition::Position(2)),
            vec![2, 1, 0],
        ),
        (
            backwards.position(StreamPosition::Position(5)).max_count(2),
            vec![5, 4],
        ),
    ];
    for (options, expected) in cases {
        let events = read(&client, "numbers", &options).await.unwrap();
        assert_eq!(numbers(&events), expected);
    }

    let events = read_all_of(&client, "numbers").await.unwrap();
    let first = events[0].get_original_event();
    assert_eq!(first.event_type, "Happened");
    assert!(first.is_json);
    assert_eq!(first.revision, 0);
    assert_eq!(first.stream_id(), "numbers");
}

#[tokio::test]
async fn a_missing_stream_is_not_found() {
    let (_double, client) = started().await;
    let read = read_all_of(&client, "nowhere").await;
    assert!(matches!(read, Err(Error::ResourceNotFound)), "{read:?}");
}

#[tokio::test]
async fn metadata_and_ids_are_stored_as_sent() {
    let (double, client) = started().await;
    let id = Uuid::new_v4();
    let data = event_with_id(1, id)
        .metadata_as_json(&serde_json::json!({ "actor": "alice" }))
        .unwrap();
    client
        .append_to_stream("meta", &Default::default(), data)
        .await
        .unwrap();

    let stored = double.events("meta");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert_eq!(stored[0].event_type, "Happened");
    assert_eq!(stored[0].content_type, "application/json");
    assert_eq!(stored[0].data, br#"{"n":1}"#);
    assert_eq!(stored[0].custom_metadata, br#"{"actor":"alice"}"#);

    let read = read_all_of(&client, "meta").await.unwrap();
    let recorded = read[0].get_original_event();
    assert_eq!(recorded.id, id);
    assert_eq!(recorded.custom_metadata.as_ref(), br#"{"actor":"alice"}"#);
    assert!(recorded.created.timestamp() > 1_600_000_000);
}

#[tokio::test]
async fn deleted_and_tombstoned_streams() {
    let (_double, client) = started().await;
    client
        .append_to_stream("soft", &Default::default(), vec![event(0), event(1)])
        .await
        .unwrap();
    client
        .delete_stream("soft", &DeleteStreamOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        read_all_of(&client, "soft").await,
        Err(Error::ResourceNotFound)
    ));
    let recreated = client
        .append_to_stream("soft", &expect(StreamState::NoStream), event(2))
        .await
        .unwrap();
    assert_eq!(recreated.next_expected_version, 2);
    assert_eq!(numbers(&read_all_of(&client, "soft").await.unwrap()), [2]);

    client
        .append_to_stream("hard", &Default::default(), event(0))
        .await
        .unwrap();
    client
        .tombstone_stream("hard", &TombstoneStreamOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        read_all_of(&client, "hard").await,
        Err(Error::ResourceDeleted)
    ));
    let append = client
        .append_to_stream("hard", &Default::default(), event(1))
        .await;
    assert!(matches!(append, Err(Error::ResourceDeleted)), "{append:?}");
}

#[tokio::test]
async fn batch_appends_follow_the_same_rules() {
    let (double, client) = started().await;
    let batch = client.batch_append(&Default::default()).await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let written = batch
        .append_to_stream(
            "batched",
            StreamState::NoStream,
            vec![event_with_id(0, a), event_with_id(1, b)],
        )
        .await
        .unwrap();
    assert_eq!(written.current_revision(), Some(1));
    let retried = batch
        .append_to_stream(
            "batched",
            StreamState::NoStream,
            vec![event_with_id(0, a), event_with_id(1, b)],
        )
        .await
        .unwrap();
    assert_eq!(retried.current_revision(), Some(1));
    assert_eq!(retried.current_position(), written.current_position());
    let conflict = batch
        .append_to_stream("batched", StreamState::StreamRevision(0), vec![event(2)])
        .await;
    assert!(
        matches!(
            &conflict,
            Err(Error::Grpc {
                code: tonic::Code::AlreadyExists,
                ..
            })
        ),
        "{conflict:?}"
    );
    assert_eq!(double.events("batched").len(), 2);
}

#[tokio::test]
async fn without_discovery_interval_zero_the_first_call_waits_half_a_second() {
    let (double, _client) = started().await;
    let url = format!("esdb://{}?tls=false", double.addr());
    let slow = kurrentdb::Client::new(url.parse().unwrap()).unwrap();
    let started = std::time::Instant::now();
    slow.server_info().await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(450));
}

#[tokio::test]
async fn an_event_without_a_type_is_refused_and_nothing_is_written() {
    let (double, client) = started().await;
    let untyped = kurrentdb::EventData::binary("", vec![1u8, 2, 3].into());
    let result = client
        .append_to_stream("typeless", &Default::default(), untyped)
        .await;
    assert!(result.is_err(), "an empty type was accepted: {result:?}");
    assert!(double.events("typeless").is_empty());
}
