//! The Socket Mode websocket: what `apps.connections.open` points at.
//!
//! Slack's side of the protocol, as far as a bot sees it: the URL carries a one-time ticket;
//! on connect Slack sends `{"type":"hello",...}`; then it sends envelopes (`events_api`,
//! `interactive`, `slash_commands`), each to one of the app's connections, and expects an
//! acknowledgement frame `{"envelope_id":...}` (with a `payload` for some) back within three
//! seconds; before recycling a connection it sends `{"type":"disconnect","reason":...}`.
//! The fake does exactly that; envelopes come from the test ([`crate::FakeSlack::socket_send`])
//! and every frame the client sends back with an `envelope_id` is recorded as an ack.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::APP_ID;
use crate::state::{Frame, Shared};

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let ticket = uri.query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "ticket")
            .map(|(_, value)| value.into_owned())
    });
    // A ticket is good for one connection, like the URLs Slack hands out.
    let admitted = ticket.is_some_and(|ticket| {
        let mut inner = shared.lock();
        let before = inner.tickets.len();
        inner.tickets.retain(|t| *t != ticket);
        inner.tickets.len() < before
    });
    if !admitted {
        return (
            StatusCode::UNAUTHORIZED,
            "unknown or used Socket Mode ticket",
        )
            .into_response();
    }
    ws.on_upgrade(move |socket| serve(shared, socket))
}

async fn serve(shared: Arc<Shared>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let hello = json!({
        "type": "hello",
        "num_connections": shared.socket_count() + 1,
        "debug_info": {
            "host": "fake-slack",
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
        "connection_info": { "app_id": APP_ID },
    });
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = shared.socket_opened(tx);

    let writing = async {
        while let Some(frame) = rx.recv().await {
            match frame {
                Frame::Text(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Frame::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    };
    let reading = async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Text(text) => match serde_json::from_str::<Value>(text.as_str()) {
                    Ok(frame) if frame.get("envelope_id").is_some() => shared.record_ack(frame),
                    _ => tracing::warn!(%text, "fake Slack: a Socket Mode frame that is no ack"),
                },
                Message::Close(_) => break,
                // Pings are answered by the websocket layer; nothing else is expected.
                _ => {}
            }
        }
    };
    tokio::select! {
        () = writing => {}
        () = reading => {}
    }
    shared.socket_closed(id);
}
