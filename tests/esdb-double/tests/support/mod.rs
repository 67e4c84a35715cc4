//! Helpers for driving the double with the real `kurrentdb` client.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use esdb_double::Double;
use kurrentdb::{Client, EventData, ReadStreamOptions, ResolvedEvent, StreamPosition};
use uuid::Uuid;

/// The client needs a rustls crypto provider installed once per process.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub async fn started() -> (Double, Client) {
    install_crypto();
    let double = Double::start().await;
    let client = client(&double);
    (double, client)
}

pub fn client(double: &Double) -> Client {
    let settings = double.url().parse().expect("the double's URL parses");
    Client::new(settings).expect("a client for the double")
}

pub fn event(n: u32) -> EventData {
    EventData::json("Happened", &serde_json::json!({ "n": n }))
        .expect("serializable")
        .id(Uuid::new_v4())
}

pub fn event_with_id(n: u32, id: Uuid) -> EventData {
    EventData::json("Happened", &serde_json::json!({ "n": n }))
        .expect("serializable")
        .id(id)
}

/// The `n` field of each event's JSON data.
pub fn numbers(events: &[ResolvedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| {
            let data: serde_json::Value = e.get_original_event().as_json().expect("json data");
            data["n"].as_u64().expect("n")
        })
        .collect()
}

pub async fn read(
    client: &Client,
    stream: &str,
    options: &ReadStreamOptions,
) -> kurrentdb::Result<Vec<ResolvedEvent>> {
    let mut read = client.read_stream(stream, options).await?;
    let mut events = Vec::new();
    while let Some(event) = read.next().await? {
        events.push(event);
    }
    Ok(events)
}

pub async fn read_all_of(client: &Client, stream: &str) -> kurrentdb::Result<Vec<ResolvedEvent>> {
    read(
        client,
        stream,
        &ReadStreamOptions::default().position(StreamPosition::Start),
    )
    .await
}

/// Fails the test instead of hanging it.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
