//! Socket Mode through the real slack-morphism listener: it opens a connection with
//! `apps.connections.open`, receives `hello`, gets the envelopes a test pushes, and acks them;
//! on `disconnect` it reconnects with a fresh URL.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fake_slack::{FakeSlack, envelope};
use serde_json::{Value, json};
use slack_morphism::prelude::*;
use support::{app_token, client};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

type Seen = mpsc::UnboundedSender<String>;

async fn seen(states: &SlackClientEventsUserState, what: String) {
    let states = states.read().await;
    let tx = states.get_user_state::<Seen>().expect("the test's channel");
    tx.send(what).expect("the test is listening");
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let what = match event.event {
        SlackEventCallbackBody::AppMention(mention) => {
            format!("mention {}", mention.content.text.unwrap_or_default())
        }
        other => format!("other {other:?}"),
    };
    seen(&states, what).await;
    Ok(())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    seen(
        &states,
        format!("command {}", event.text.unwrap_or_default()),
    )
    .await;
    Ok(SlackCommandEventResponse::new(
        SlackMessageContent::new().with_text("queue is empty".into()),
    ))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let what = match event {
        SlackInteractionEvent::BlockActions(actions) => format!(
            "action {}",
            actions.actions.unwrap_or_default()[0].action_id.0
        ),
        other => format!("other {other:?}"),
    };
    seen(&states, what).await;
    Ok(SlackInteractionResponse::Empty)
}

/// A listener with one connection (slack-morphism opens two by default, the second after
/// five seconds), reporting what its callbacks saw on the returned channel.
async fn listen(
    slack: &FakeSlack,
) -> (
    SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(Arc::new(client(slack))).with_user_state(tx),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_command_events(on_command)
        .with_interaction_events(on_interaction);
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new().with_max_connections_count(1),
        environment,
        callbacks,
    );
    listener.listen_for(&app_token()).await.unwrap();
    listener.start().await;
    (listener, rx)
}

fn app_mention(event_id: &str, text: &str) -> Value {
    json!({
        "token": "verification-token",
        "team_id": fake_slack::TEAM_ID,
        "api_app_id": fake_slack::APP_ID,
        "event": {
            "type": "app_mention",
            "user": "U0BOB",
            "text": text,
            "ts": "1700000001.000100",
            "channel": "C0RELEASES",
            "event_ts": "1700000001.000100",
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_700_000_001,
        "authorizations": [{
            "enterprise_id": null,
            "team_id": fake_slack::TEAM_ID,
            "user_id": fake_slack::BOT_USER_ID,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
    })
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a callback within the wait")
        .expect("the listener is alive")
}

#[tokio::test]
async fn an_events_api_envelope_reaches_the_listener_and_is_acked() {
    let slack = FakeSlack::start().await;
    let (listener, mut rx) = listen(&slack).await;
    slack.socket_connected(WAIT).await;

    slack.socket_send(envelope::events_api(
        "env-1",
        app_mention("Ev0001", "<@U0DOBROBOT> dep request PAY-1"),
    ));

    assert_eq!(
        next(&mut rx).await,
        "mention <@U0DOBROBOT> dep request PAY-1"
    );
    assert_eq!(
        slack.wait_for_ack("env-1", WAIT).await,
        json!({ "envelope_id": "env-1" })
    );
    let opened = slack.calls();
    assert_eq!(opened[0].method, "apps.connections.open");
    assert_eq!(opened[0].token.as_deref(), Some(fake_slack::APP_TOKEN));
    listener.shutdown().await;
}

#[tokio::test]
async fn an_envelope_pushed_before_the_client_connects_is_delivered_after_hello() {
    let slack = FakeSlack::start().await;
    slack.socket_send(envelope::events_api_retry(
        "env-early",
        app_mention("Ev0002", "<@U0DOBROBOT> queue"),
        1,
        "timeout",
    ));

    let (listener, mut rx) = listen(&slack).await;

    assert_eq!(next(&mut rx).await, "mention <@U0DOBROBOT> queue");
    slack.wait_for_ack("env-early", WAIT).await;
    listener.shutdown().await;
}

#[tokio::test]
async fn a_slash_command_is_acked_with_its_response_payload() {
    let slack = FakeSlack::start().await;
    let (listener, mut rx) = listen(&slack).await;
    slack.socket_connected(WAIT).await;

    slack.socket_send(envelope::slash_commands(
        "env-cmd",
        json!({
            "token": "verification-token",
            "team_id": fake_slack::TEAM_ID,
            "team_domain": "dobro-test",
            "channel_id": "C0RELEASES",
            "channel_name": "releases",
            "user_id": "U0BOB",
            "user_name": "bob",
            "command": "/dobro",
            "text": "queue",
            "api_app_id": fake_slack::APP_ID,
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.com/commands/T0DOBRO/1/abc",
            "trigger_id": "1.2.abc",
        }),
    ));

    assert_eq!(next(&mut rx).await, "command queue");
    let ack = slack.wait_for_ack("env-cmd", WAIT).await;
    assert_eq!(ack["payload"]["text"], "queue is empty");
    listener.shutdown().await;
}

#[tokio::test]
async fn a_block_action_is_acked() {
    let slack = FakeSlack::start().await;
    let (listener, mut rx) = listen(&slack).await;
    slack.socket_connected(WAIT).await;

    slack.socket_send(envelope::interactive(
        "env-button",
        json!({
            "type": "block_actions",
            "team": { "id": fake_slack::TEAM_ID, "domain": "dobro-test" },
            "user": { "id": "U0ALICE", "username": "alice", "name": "alice", "team_id": fake_slack::TEAM_ID },
            "api_app_id": fake_slack::APP_ID,
            "token": "verification-token",
            "container": {
                "type": "message",
                "message_ts": "1700000000.000100",
                "channel_id": "C0RELEASES",
                "is_ephemeral": false,
            },
            "trigger_id": "1.2.abc",
            "channel": { "id": "C0RELEASES", "name": "releases" },
            "message": {
                "type": "message",
                "user": fake_slack::BOT_USER_ID,
                "ts": "1700000000.000100",
                "text": "PAY-1 requested",
            },
            "response_url": "https://hooks.slack.com/actions/T0DOBRO/1/abc",
            "actions": [{
                "type": "button",
                "action_id": "accept",
                "block_id": "release",
                "text": { "type": "plain_text", "text": "Accept" },
                "value": "PAY-1",
                "action_ts": "1700000002.000200",
            }],
        }),
        false,
    ));

    assert_eq!(next(&mut rx).await, "action accept");
    assert_eq!(
        slack.wait_for_ack("env-button", WAIT).await,
        json!({ "envelope_id": "env-button" })
    );
    listener.shutdown().await;
}

#[tokio::test]
async fn after_a_disconnect_the_client_reconnects_and_keeps_receiving() {
    let slack = FakeSlack::start().await;
    let (listener, mut rx) = listen(&slack).await;
    slack.socket_connected(WAIT).await;

    slack.socket_disconnect("refresh_requested");
    slack.socket_connected(WAIT).await;
    slack.socket_send(envelope::events_api(
        "env-2",
        app_mention("Ev0003", "<@U0DOBROBOT> dep start PAY-1"),
    ));

    assert_eq!(next(&mut rx).await, "mention <@U0DOBROBOT> dep start PAY-1");
    slack.wait_for_ack("env-2", WAIT).await;
    assert_eq!(slack.socket_connections_total(), 2);
    let opens = slack
        .calls()
        .into_iter()
        .filter(|c| c.method == "apps.connections.open")
        .count();
    assert_eq!(opens, 2);
    listener.shutdown().await;
}

#[tokio::test]
#[should_panic(expected = "no ack of envelope env-none")]
async fn wait_for_ack_panics_when_nothing_acks() {
    let slack = FakeSlack::start().await;
    slack
        .wait_for_ack("env-none", Duration::from_millis(50))
        .await;
}
