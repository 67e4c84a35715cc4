//! Projection management through the real `kurrentdb` projection client: what is sent is kept
//! for the test to read back; statuses and lists answer from it.

mod support;

use esdb_double::ProjectionRecord;
use futures::TryStreamExt;
use kurrentdb::{
    CreateProjectionOptions, Error, GenericProjectionOptions, ProjectionClient,
    UpdateProjectionOptions,
};
use support::started;

fn projection_client(double: &esdb_double::Double) -> ProjectionClient {
    ProjectionClient::new(double.url().parse().unwrap()).unwrap()
}

#[tokio::test]
async fn created_and_updated_projections_are_kept_as_sent() {
    let (double, _client) = started().await;
    let projections = projection_client(&double);
    let query = "fromStream('ledger').when({})".to_owned();
    projections
        .create(
            "by-ticket",
            query.clone(),
            &CreateProjectionOptions::default().emit(true),
        )
        .await
        .unwrap();
    projections
        .create(
            "queue",
            "fromAll()".to_owned(),
            &CreateProjectionOptions::default(),
        )
        .await
        .unwrap();

    assert_eq!(
        double.projections(),
        [
            ProjectionRecord {
                name: "by-ticket".into(),
                query: query.clone(),
                mode: "Continuous".into(),
                emit_enabled: true,
                track_emitted_streams: false,
                engine_version: 1,
                enabled: true,
                // The client creates, then enables emitting with an update.
                version: 2,
            },
            ProjectionRecord {
                name: "queue".into(),
                query: "fromAll()".into(),
                mode: "Continuous".into(),
                emit_enabled: false,
                track_emitted_streams: false,
                engine_version: 1,
                enabled: true,
                version: 1,
            },
        ]
    );

    let changed = "fromStream('ledger').when({$init: () => ({})})".to_owned();
    projections
        .update(
            "queue",
            changed.clone(),
            &UpdateProjectionOptions::default(),
        )
        .await
        .unwrap();
    let queue = double
        .projections()
        .into_iter()
        .find(|p| p.name == "queue")
        .unwrap();
    assert_eq!(queue.query, changed);
    assert!(
        !queue.emit_enabled,
        "an update without emit options keeps the setting"
    );
}

#[tokio::test]
async fn status_and_list_answer_from_what_was_created() {
    let (double, _client) = started().await;
    let projections = projection_client(&double);
    let options = GenericProjectionOptions::default();
    let missing = projections.get_status("nope", &options).await;
    assert!(
        matches!(missing, Err(Error::ResourceNotFound)),
        "{missing:?}"
    );

    projections
        .create(
            "queue",
            "fromAll()".to_owned(),
            &CreateProjectionOptions::default(),
        )
        .await
        .unwrap();
    let status = projections
        .get_status("queue", &options)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.name, "queue");
    assert_eq!(status.mode, "Continuous");
    assert_eq!(status.status, "Running");

    projections.disable("queue", &options).await.unwrap();
    let listed: Vec<_> = projections
        .list(&options)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "Stopped");

    let updated = projections
        .update(
            "nope",
            "fromAll()".to_owned(),
            &UpdateProjectionOptions::default(),
        )
        .await;
    assert!(
        matches!(updated, Err(Error::ResourceNotFound)),
        "{updated:?}"
    );
}

#[tokio::test]
async fn creating_an_existing_name_or_tracking_without_emitting_fails_as_on_the_server() {
    let (double, _client) = started().await;
    let projections = projection_client(&double);
    projections
        .create(
            "queue",
            "fromAll()".to_owned(),
            &CreateProjectionOptions::default(),
        )
        .await
        .unwrap();
    let again = projections
        .create(
            "queue",
            "fromAll()".to_owned(),
            &CreateProjectionOptions::default(),
        )
        .await;
    assert!(matches!(again, Err(Error::ServerError(_))), "{again:?}");

    let tracked = CreateProjectionOptions::default()
        .emit(true)
        .track_emitted_streams(true);
    let refused = projections
        .create("tracked", "fromAll()".to_owned(), &tracked)
        .await;
    assert!(matches!(refused, Err(Error::ServerError(_))), "{refused:?}");
    assert_eq!(double.projections().len(), 1);
}
