//! A fake Slack for dobrobot's tests: the Web API methods the bot calls and the Socket Mode
//! websocket, served by axum on 127.0.0.1 and spoken to over the wire by the real
//! `slack-morphism` client.
//!
//! It is a stand-in at the one process boundary the tests cannot cross (see STYLE.md,
//! "Tests"): the bot under test keeps its real HTTP client, its real JSON and its real retry
//! logic; only the server at the other end is ours. So the fake answers in Slack's own
//! response shapes (`{"ok":true,...}`, `{"ok":false,"error":"..."}`, HTTP 429 with
//! `Retry-After`), checks the bearer token the way Slack does, and records every call so a
//! test can assert what the bot sent.
//!
//! Where things live: [`state`] holds what the fake knows (tokens, users, groups, messages)
//! and what it has seen (calls, acks); [`web`] turns HTTP requests into method calls;
//! [`methods`] answers each Web API method; [`socket`] is the Socket Mode websocket;
//! [`envelope`] builds Socket Mode envelopes in Slack's shape for tests to push.
//!
//! Pointing slack-morphism 2.31 at the fake (see `tests/support/mod.rs` for working code):
//!
//! - The base URL goes to `SlackClientHyperConnector::with_slack_api_url`; slack-morphism
//!   builds `format!("{base}/{method}")`, so [`FakeSlack::api_url`] has no trailing slash.
//! - `SlackClientHyperConnector::new()` is `https_only`: for `http://127.0.0.1` build the
//!   hyper-rustls connector with `.https_or_http()` and convert it with
//!   `SlackClientHyperConnector::from(..)` (same `SlackClientHyperHttpsConnector` type).
//! - In dobrobot's build rustls has both `ring` (from slack-morphism's hyper-rustls) and
//!   `aws-lc-rs` (from kurrentdb's stack) compiled in, so building any rustls `ClientConfig`
//!   without a provider panics; install a process-wide one first:
//!   `rustls::crypto::ring::default_provider().install_default()` (ignore the `Err` when one
//!   already is). tokio-tungstenite needs it for `wss://` in production too.
//! - 429s are retried only with `.with_rate_control(SlackApiRateControlConfig::new()
//!   .with_max_retries(n))`, after the `Retry-After` delay; without rate control the call
//!   fails with `SlackClientError::RateLimitError { retry_after, .. }`.
//! - Socket Mode: `SlackClientSocketModeConfig` opens two connections by default, the second
//!   `initial_backoff_in_seconds` (5 s) after the first; `with_max_connections_count(1)` keeps
//!   tests quick. On `disconnect` (or a closed socket) the client calls
//!   `apps.connections.open` again and reconnects.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! let slack = fake_slack::FakeSlack::start().await;
//! // point the bot's slack-morphism connector at slack.api_url(), run it, then:
//! let posted = slack
//!     .wait_for("chat.postMessage", |p| p["channel"] == "C0RELEASES", Duration::from_secs(5))
//!     .await;
//! assert_eq!(posted["text"], "PAY-1 requested by <@U0BOB>");
//! # }
//! ```

pub mod envelope;
mod methods;
mod socket;
mod state;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub use state::{Call, Outcome, User};
use state::{Shared, wait_until};

/// The bot token the fake accepts by default (`Authorization: Bearer xoxb-test`).
pub const BOT_TOKEN: &str = "xoxb-test";
/// The app-level token the fake accepts for `apps.connections.open` by default.
pub const APP_TOKEN: &str = "xapp-test";
/// The workspace the tokens belong to, as `auth.test` reports it.
pub const TEAM_ID: &str = "T0DOBRO";
/// The workspace's name, as `auth.test` reports it.
pub const TEAM_NAME: &str = "Dobro Test";
/// The workspace's URL, as `auth.test` reports it.
pub const TEAM_URL: &str = "https://dobro-test.slack.com/";
/// The bot's own user id (what `auth.test` returns as `user_id`, and the `<@...>` an app
/// mention starts with).
pub const BOT_USER_ID: &str = "U0DOBROBOT";
/// The bot user's name, as `auth.test` reports it.
pub const BOT_USER_NAME: &str = "dobrobot";
/// The bot's `bot_id` (`B...`), present on the messages it posts.
pub const BOT_ID: &str = "B0DOBROBOT";
/// The app id, present in Socket Mode's `hello` and in event payloads' `api_app_id`.
pub const APP_ID: &str = "A0DOBROBOT";

/// A running fake Slack. Dropping it stops the server and closes every websocket.
pub struct FakeSlack {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeSlack {
    /// Starts the fake on 127.0.0.1 on a free port, with the bot token [`BOT_TOKEN`], the app
    /// token [`APP_TOKEN`], the team [`TEAM_ID`], the users U0ALICE `alice`, U0BOB `bob`,
    /// U0OLEG `oleg` and U0CAROL `carol`, and the user groups S0APPROVERS -> [U0ALICE] and
    /// S0ADMINS -> [U0OLEG].
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 for the fake Slack");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared::new(addr));
        for (id, name) in [
            ("U0ALICE", "alice"),
            ("U0BOB", "bob"),
            ("U0OLEG", "oleg"),
            ("U0CAROL", "carol"),
        ] {
            shared.add_user(User::named(id, name));
        }
        shared.set_group("S0APPROVERS", &["U0ALICE"]);
        shared.set_group("S0ADMINS", &["U0OLEG"]);

        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = web::router(shared.clone());
        let closing = shared.clone();
        tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
                // Websockets are long-lived connections: graceful shutdown would wait for
                // them forever, so close them first.
                closing.close_sockets();
            });
            if let Err(err) = serving.await {
                tracing::warn!(%err, "fake Slack server stopped with an error");
            }
        });
        FakeSlack {
            addr,
            shared,
            shutdown: Some(shutdown),
        }
    }

    /// The Web API base URL to give slack-morphism's
    /// `SlackClientHyperConnector::with_slack_api_url`: `http://127.0.0.1:PORT/api`, without a
    /// trailing slash, because slack-morphism joins it to the method name with a `/`
    /// (a trailing slash is tolerated too: the fake ignores the doubled `/`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds (or replaces) a user known to `users.info` and `conversations.open`, with
    /// `real_name` the capitalised `name` and `profile.display_name` the `name`.
    pub fn add_user(&self, id: &str, name: &str) {
        self.shared.add_user(User::named(id, name));
    }

    /// Adds (or replaces) a user with every name spelled out; an empty `display_name` is what
    /// Slack returns for people who never set one.
    pub fn put_user(&self, user: User) {
        self.shared.add_user(user);
    }

    /// Sets the members of a user group, as `usergroups.users.list` will answer them.
    pub fn set_group(&self, group: &str, users: &[&str]) {
        self.shared.set_group(group, users);
    }

    /// The DM channel id `conversations.open` returns for a user: `"D"` followed by the
    /// user id.
    pub fn dm_channel(user: &str) -> String {
        methods::dm_channel(user)
    }

    /// Every Web API request the fake received, in order, whatever it answered (rejected and
    /// rate-limited attempts included; see [`Call::outcome`]).
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls()
    }

    /// The parameters of the calls to `method` that Slack accepted (answered `"ok": true`),
    /// in order: what Slack would have acted upon.
    pub fn calls_to(&self, method: &str) -> Vec<Value> {
        self.shared.calls_to(method)
    }

    /// Waits until an accepted call to `method` matches `pred` (calls made before the wait
    /// count too) and returns its parameters. Panics after `timeout`, listing the calls seen.
    pub async fn wait_for(
        &self,
        method: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let found = wait_until(&self.shared.calls_seen, timeout, || {
            self.shared.calls_to(method).into_iter().find(|p| pred(p))
        })
        .await;
        match found {
            Some(params) => params,
            None => panic!(
                "no matching {method} call within {timeout:?}; calls seen:\n{}",
                state::describe_calls(&self.shared.calls())
            ),
        }
    }

    /// The messages a channel shows now, oldest first, thread replies included (they carry
    /// `thread_ts`), each as Slack would return it, with `chat.update` edits applied.
    /// Ephemeral messages are not part of a channel: see `calls_to("chat.postEphemeral")`.
    /// The App Home view last published for `user`.
    pub fn home(&self, user: &str) -> Option<Value> {
        self.shared.lock().homes.get(user).cloned()
    }

    /// The modals opened, in order.
    pub fn modals(&self) -> Vec<Value> {
        self.shared.lock().modals.clone()
    }

    pub fn messages(&self, channel: &str) -> Vec<Value> {
        self.shared.messages(channel)
    }

    /// One message as it stands now, with edits applied.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared.message(channel, ts)
    }

    /// Makes the next `times` calls to `method` answer HTTP 429 with
    /// `Retry-After: retry_after_secs` and `{"ok":false,"error":"ratelimited"}`.
    pub fn rate_limit(&self, method: &str, times: usize, retry_after_secs: u64) {
        self.shared.rate_limit(method, times, retry_after_secs);
    }

    /// Leaves the next `times` calls to `method` without an answer: they are not carried out
    /// nor recorded in [`FakeSlack::calls`], and hang until the client closes the connection
    /// (a process killed in the middle of a Slack call). See [`FakeSlack::wait_stalled`].
    pub fn stall(&self, method: &str, times: usize) {
        self.shared.stall(method, times);
    }

    /// Waits until a call to `method` is stalled and returns its parameters. Panics after
    /// `timeout`.
    pub async fn wait_stalled(&self, method: &str, timeout: Duration) -> Value {
        let found = wait_until(&self.shared.calls_seen, timeout, || {
            self.shared.stalled(method).into_iter().next()
        })
        .await;
        found.unwrap_or_else(|| panic!("no {method} call stalled within {timeout:?}"))
    }

    /// Waits until at least one Socket Mode client is connected (it has been sent `hello`).
    /// Panics after `timeout`.
    pub async fn socket_connected(&self, timeout: Duration) {
        let connected = wait_until(&self.shared.sockets_seen, timeout, || {
            (self.shared.socket_count() > 0).then_some(())
        })
        .await;
        if connected.is_none() {
            panic!(
                "no Socket Mode client connected within {timeout:?}; calls seen:\n{}",
                state::describe_calls(&self.shared.calls())
            );
        }
    }

    /// How many Socket Mode clients are connected now.
    pub fn socket_count(&self) -> usize {
        self.shared.socket_count()
    }

    /// How many websocket connections were accepted since the start (reconnections count).
    pub fn socket_connections_total(&self) -> usize {
        self.shared.socket_connections_total()
    }

    /// Pushes an envelope (a JSON object with `type`, `envelope_id`, `payload`, ...; see
    /// [`envelope`]) to one connected client, the longest-connected one, as Slack delivers
    /// each envelope on one of the app's connections. With no client connected it is queued
    /// and delivered to the next one after its `hello`.
    pub fn socket_send(&self, envelope: Value) {
        self.shared.socket_send(envelope);
    }

    /// Sends `{"type":"disconnect","reason":...}` to every connected client, as Slack does
    /// before it recycles a connection (`"refresh_requested"`, `"warning"`, `"link_disabled"`).
    /// The fake does not close the sockets itself: a client is expected to reconnect.
    pub fn socket_disconnect(&self, reason: &str) {
        self.shared.socket_disconnect(reason);
    }

    /// Closes every websocket abruptly (a close frame, no `disconnect` message first).
    pub fn socket_drop_all(&self) {
        self.shared.close_sockets();
    }

    /// Every frame the clients sent back that carries an `envelope_id`, in order: the
    /// acknowledgements, with their `payload` when the client answered with one.
    pub fn socket_acks(&self) -> Vec<Value> {
        self.shared.acks()
    }

    /// Waits for the acknowledgement of `envelope_id` and returns it. Panics after `timeout`.
    pub async fn wait_for_ack(&self, envelope_id: &str, timeout: Duration) -> Value {
        let found = wait_until(&self.shared.acks_seen, timeout, || {
            self.shared
                .acks()
                .into_iter()
                .find(|ack| ack["envelope_id"] == envelope_id)
        })
        .await;
        match found {
            Some(ack) => ack,
            None => panic!(
                "no ack of envelope {envelope_id} within {timeout:?}; acks seen: {:?}",
                self.shared.acks()
            ),
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.shared.close_sockets();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
