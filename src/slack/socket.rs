//! Socket Mode: Slack's deliveries over a websocket that dobrobot opens itself, so the bot needs
//! no public URL (the usual choice for an internal bot). Used when `SLACK_APP_TOKEN` is set.
//!
//! slack-morphism does the protocol: `apps.connections.open` with the app token, the websocket,
//! pings, and a reconnection (a fresh `apps.connections.open`) when Slack sends `disconnect`,
//! closes the socket, or stops answering pings. It acknowledges an envelope only after our
//! callback returns, and it reads one connection's envelopes one after the other, so a callback
//! here only turns the payload into an `Inbound` (with the front's `from_*` functions, the same
//! ones the Events API uses) and spawns `SlackFront::handle`; it never waits for the ledger.
//! That keeps Slack's 3-second rule whatever the store does.
//!
//! A redelivered envelope (`retry_attempt` > 0) carries the same `event_id`, so it becomes an
//! `Inbound` with the same delivery id, and the ledger, whose event ids derive from it, appends
//! nothing new. slack-morphism does not surface `retry_attempt`; nothing here needs it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slack_morphism::prelude::*;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::SlackConfig;

use super::api::Client;
use super::error::SlackError;
use super::front::SlackFront;
use super::interact::{self, Work};

/// How long `shutdown` waits for commands already handed to the front.
const DRAIN: Duration = Duration::from_secs(10);

/// A running Socket Mode listener. Stop it with `shutdown`, which lets the commands already
/// received finish.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
    dispatcher: Arc<Dispatcher>,
}

impl SocketMode {
    /// Checks the app token with Slack and starts listening in the background.
    ///
    /// A token Slack rejects (`invalid_auth`, `not_allowed_token_type`, ...) is an error here,
    /// rather than a reconnection loop that never succeeds; a Slack that cannot be reached is
    /// logged and retried by slack-morphism every 30 seconds.
    pub async fn start(config: &SlackConfig, front: Arc<SlackFront>) -> Result<Self, SlackError> {
        let app_token = config
            .app_token
            .as_deref()
            .ok_or(SlackError::NotConfigured("SLACK_APP_TOKEN is not set"))?;
        let token = SlackApiToken::new(app_token.to_string().into());
        install_crypto_provider();
        // The front's Web API client: same base URL (`SLACK_API_URL`), same connection pool.
        let client = front.api().client().clone();
        check_app_token(&client, &token).await?;

        let dispatcher = Arc::new(Dispatcher {
            front,
            tasks: Mutex::new(JoinSet::new()),
        });
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(client)
                .with_error_handler(on_error)
                .with_user_state(dispatcher.clone()),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_hello_events(on_hello)
            .with_push_events(on_push_event)
            .with_interaction_events(on_interaction)
            .with_command_events(on_command);
        // slack-morphism's defaults: two connections per token (the second 5 s after the
        // first, so a recycled one never leaves the bot deaf), a ping every 15 s (reconnect
        // after 5 unanswered), 30 s between attempts when Slack cannot be reached.
        let listener = SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new(),
            environment,
            callbacks,
        );
        listener
            .listen_for(&token)
            .await
            .map_err(|error| SlackError::Api(format!("Socket Mode: {error}")))?;
        listener.start().await;
        tracing::info!(api_url = %config.api_url, "Socket Mode started");
        Ok(SocketMode {
            listener,
            dispatcher,
        })
    }

    /// Closes the websockets (no new envelopes), then waits up to 10 seconds for the commands
    /// already received.
    pub async fn shutdown(self) {
        self.listener.shutdown().await;
        let mut tasks = std::mem::take(
            &mut *self
                .dispatcher
                .tasks
                .lock()
                .expect("the task set's lock is never held across a panic"),
        );
        let drained =
            tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = tasks.len(),
                "Socket Mode stopped with commands still running"
            );
        }
        tracing::info!("Socket Mode stopped");
    }
}

/// Runs Socket Mode until `stop` resolves, then shuts it down.
pub async fn run(
    config: &SlackConfig,
    front: Arc<SlackFront>,
    stop: impl Future<Output = ()>,
) -> Result<(), SlackError> {
    let socket = SocketMode::start(config, front).await?;
    stop.await;
    socket.shutdown().await;
    Ok(())
}

/// Makes ring the process's rustls provider, unless one was installed already.
///
/// slack-morphism's websocket (tokio-tungstenite) builds its rustls config with
/// `ClientConfig::builder()`, which needs a process-wide crypto provider. This build links both
/// of rustls' providers (ring through slack-morphism, aws-lc-rs through kurrentdb), so rustls
/// cannot pick one itself and the first `wss://` connection would panic inside slack-morphism's
/// connection task: Socket Mode would never connect, and say so only in a panic message.
/// `serve` installs the provider too; doing it here keeps `SocketMode::start` safe on its own.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: there is one either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

async fn check_app_token(client: &Client, token: &SlackApiToken) -> Result<(), SlackError> {
    let session = client.open_session(token);
    match session
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await
    {
        Ok(_) => Ok(()),
        Err(slack_morphism::errors::SlackClientError::ApiError(error)) => Err(SlackError::Call {
            method: "apps.connections.open",
            detail: format!("SLACK_APP_TOKEN refused: {}", error.code),
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot reach Slack for Socket Mode yet; retrying in the background");
            Ok(())
        }
    }
}

/// What the callbacks share: the front, and the commands handed to it, so that `shutdown` can
/// wait for them.
struct Dispatcher {
    front: Arc<SlackFront>,
    tasks: Mutex<JoinSet<()>>,
}

impl Dispatcher {
    /// Hands the work to the front in its own task and returns at once.
    fn dispatch(&self, work: Vec<Work>) {
        if work.is_empty() {
            return;
        }
        // The front opens the `slack_delivery` span (event id, user) inside this one.
        let span = tracing::info_span!("socket_mode");
        let front = self.front.clone();
        let mut tasks = self
            .tasks
            .lock()
            .expect("the task set's lock is never held across a panic");
        // Forget the finished ones, so the set holds only what is running.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(
            async move {
                for work in work {
                    front.perform(work).await;
                }
            }
            .instrument(span),
        );
    }
}

async fn dispatcher(state: &SlackClientEventsUserState) -> Arc<Dispatcher> {
    state
        .read()
        .await
        .get_user_state::<Arc<Dispatcher>>()
        .expect("SocketMode::start stores the dispatcher in the listener's state")
        .clone()
}

/// Slack's `hello` on each new connection. (Generic because slack-morphism does not export the
/// hello event's type by name.)
async fn on_hello<E: std::fmt::Debug>(
    event: E,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) {
    tracing::info!(hello = ?event, "Socket Mode connected");
}

/// `events_api` envelopes: app mentions and DMs.
async fn on_push_event(
    event: SlackPushEventCallback,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let work = interact::push_event(&event);
    if work.is_empty() {
        tracing::debug!(event_id = %event.event_id, "Slack event ignored");
    }
    dispatcher(&state).await.dispatch(work);
    Ok(())
}

/// `interactive` envelopes: buttons (`block_actions`); other interactions are acknowledged and
/// ignored.
async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let dispatcher = dispatcher(&state).await;
    // The acknowledgement carries a submitted modal's field errors, as over HTTP.
    let (response, work) = interact::interaction(&dispatcher.front, &event);
    dispatcher.dispatch(work);
    Ok(response)
}

/// `slash_commands` envelopes: `/dobro ...`. The answer comes later from the front, so the
/// acknowledgement carries no message: see `BareAck`.
async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let dispatcher = dispatcher(&state).await;
    dispatcher.dispatch(interact::command(&dispatcher.front, &event));
    Err(Box::new(BareAck))
}

/// slack-morphism puts a command callback's `Ok` response into the acknowledgement as a message
/// for Slack to show, and has no `Ok` for "no message". Its error path sends the bare
/// `{"envelope_id": ...}` when the error handler answers with a success status, so the command
/// callback returns this, and `on_error` answers 200 to it without logging.
#[derive(Debug, thiserror::Error)]
#[error("acknowledged without a response payload")]
struct BareAck;

/// Errors from callbacks and from the websocket. Every envelope is acknowledged (a 2xx here): a
/// redelivery of something that failed once would fail again, and the ledger has the last word
/// on duplicates anyway.
fn on_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    if error.downcast_ref::<BareAck>().is_none() {
        tracing::warn!(%error, "Socket Mode");
    }
    HttpStatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The websocket's TLS config is built with `ClientConfig::builder()`, which panics unless a
    /// provider is installed when both of rustls' providers are compiled in, as they are here.
    #[test]
    fn a_default_rustls_config_can_be_built_once_the_provider_is_installed() {
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        let _config = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    }
}
