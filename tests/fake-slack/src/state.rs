//! What the fake knows (tokens, users, groups, the messages in each channel) and what it has
//! seen (calls, Socket Mode acknowledgements), behind one mutex.
//!
//! The mutex is a std one and is never held across an `.await`: every access is a short
//! critical section. Waiters do not poll: each kind of observation (calls, acks, socket
//! connections) bumps a `watch` counter, and [`wait_until`] re-checks its condition whenever
//! the counter moves.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::{APP_TOKEN, BOT_TOKEN};

/// One Web API request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method name, e.g. `"chat.postMessage"`.
    pub method: String,
    /// The token the request carried (the `Authorization: Bearer` header, or a `token`
    /// parameter), if any.
    pub token: Option<String>,
    /// The parameters: the query string, then the body (JSON as sent; a form body as strings,
    /// except `blocks`, `attachments` and `metadata`, which Slack takes as JSON-encoded
    /// strings and the fake decodes). A `token` parameter is moved to [`Call::token`].
    pub params: Value,
    /// What the fake answered.
    pub outcome: Outcome,
}

/// What the fake answered to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `{"ok": true, ...}`.
    Ok,
    /// `{"ok": false, "error": ...}` with the error code.
    Error(String),
    /// HTTP 429 with `Retry-After`.
    RateLimited,
}

/// A workspace member as `users.info` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `U...`
    pub id: String,
    /// The legacy username, `user.name`.
    pub name: String,
    /// `user.real_name` and `user.profile.real_name`.
    pub real_name: String,
    /// `user.profile.display_name`; empty when the person never set one.
    pub display_name: String,
}

impl User {
    /// A user whose display name is `name` and whose real name is `name` capitalised.
    pub fn named(id: &str, name: &str) -> User {
        let mut chars = name.chars();
        let real_name = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        User {
            id: id.to_string(),
            name: name.to_string(),
            real_name,
            display_name: name.to_string(),
        }
    }
}

/// Which kind of token a method wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Bot,
    App,
}

/// An outgoing websocket frame for one connection.
#[derive(Debug)]
pub(crate) enum Frame {
    Text(String),
    Close,
}

pub(crate) struct Socket {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::UnboundedSender<Frame>,
    /// Sent a `disconnect`: Slack delivers nothing more on it, the client is reconnecting.
    pub(crate) draining: bool,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) bot_tokens: Vec<String>,
    pub(crate) app_tokens: Vec<String>,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    /// Posted messages per channel, in posting order (their `ts` increase).
    pub(crate) channels: BTreeMap<String, Vec<Value>>,
    pub(crate) calls: Vec<Call>,
    /// method -> (answers still to rate-limit, Retry-After seconds)
    pub(crate) rate_limits: HashMap<String, (usize, u64)>,
    /// How many of the next calls to each method are left without an answer.
    pub(crate) stalls: HashMap<String, usize>,
    /// The calls left without an answer, as (method, parameters); never in `calls`.
    pub(crate) stalled: Vec<(String, Value)>,
    /// How many timestamps were handed out; the next `ts` derives from it.
    pub(crate) ts_issued: u64,
    /// Socket Mode tickets issued by `apps.connections.open` and not used yet.
    pub(crate) tickets: Vec<String>,
    pub(crate) tickets_issued: u64,
    pub(crate) sockets: Vec<Socket>,
    pub(crate) sockets_total: usize,
    /// Envelopes pushed while no client was connected.
    pub(crate) pending: Vec<Value>,
    pub(crate) acks: Vec<Value>,
    /// Each user's App Home view, as `views.publish` left it.
    pub(crate) homes: BTreeMap<String, Value>,
    /// Modals opened by `views.open`, in order.
    pub(crate) modals: Vec<Value>,
    /// Trigger ids `views.open` has used: Slack takes each once.
    pub(crate) triggers_used: Vec<String>,
    pub(crate) views_issued: u64,
}

impl Inner {
    /// The next message timestamp: "1700000000.000100", "1700000000.000200", ... Slack's `ts`
    /// is seconds and microseconds; these increase both numerically and as strings.
    pub(crate) fn next_ts(&mut self) -> String {
        self.ts_issued += 1;
        let micros = self.ts_issued * 100;
        format!(
            "{}.{:06}",
            1_700_000_000 + micros / 1_000_000,
            micros % 1_000_000
        )
    }

    pub(crate) fn token_kind(&self, token: &str) -> Option<TokenKind> {
        if self.bot_tokens.iter().any(|t| t == token) {
            Some(TokenKind::Bot)
        } else if self.app_tokens.iter().any(|t| t == token) {
            Some(TokenKind::App)
        } else {
            None
        }
    }
}

pub(crate) struct Shared {
    pub(crate) addr: SocketAddr,
    inner: Mutex<Inner>,
    pub(crate) calls_seen: watch::Sender<usize>,
    pub(crate) acks_seen: watch::Sender<usize>,
    pub(crate) sockets_seen: watch::Sender<usize>,
}

impl Shared {
    pub(crate) fn new(addr: SocketAddr) -> Shared {
        Shared {
            addr,
            inner: Mutex::new(Inner {
                bot_tokens: vec![BOT_TOKEN.to_string()],
                app_tokens: vec![APP_TOKEN.to_string()],
                ..Inner::default()
            }),
            calls_seen: watch::Sender::new(0),
            acks_seen: watch::Sender::new(0),
            sockets_seen: watch::Sender::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a test thread while holding the lock must not hide the state from the
        // assertion that reports it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn add_user(&self, user: User) {
        self.lock().users.insert(user.id.clone(), user);
    }

    pub(crate) fn set_group(&self, group: &str, users: &[&str]) {
        self.lock().groups.insert(
            group.to_string(),
            users.iter().map(|u| u.to_string()).collect(),
        );
    }

    pub(crate) fn record(&self, call: Call) {
        self.lock().calls.push(call);
        self.calls_seen.send_modify(|n| *n += 1);
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub(crate) fn calls_to(&self, method: &str) -> Vec<Value> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method && c.outcome == Outcome::Ok)
            .map(|c| c.params.clone())
            .collect()
    }

    pub(crate) fn messages(&self, channel: &str) -> Vec<Value> {
        self.lock()
            .channels
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.lock()
            .channels
            .get(channel)?
            .iter()
            .find(|m| m["ts"] == ts)
            .cloned()
    }

    pub(crate) fn rate_limit(&self, method: &str, times: usize, retry_after_secs: u64) {
        self.lock()
            .rate_limits
            .insert(method.to_string(), (times, retry_after_secs));
    }

    pub(crate) fn stall(&self, method: &str, times: usize) {
        self.lock().stalls.insert(method.to_string(), times);
    }

    /// Consumes one stall for `method`, noting the call as stalled; whether it stalls.
    pub(crate) fn take_stall(&self, method: &str, params: &Value) -> bool {
        let mut inner = self.lock();
        match inner.stalls.get_mut(method) {
            Some(left) if *left > 0 => {
                *left -= 1;
                inner.stalled.push((method.to_string(), params.clone()));
                drop(inner);
                self.calls_seen.send_modify(|n| *n += 1);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn stalled(&self, method: &str) -> Vec<Value> {
        self.lock()
            .stalled
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Consumes one rate-limited answer for `method`, if any is left: its Retry-After.
    pub(crate) fn take_rate_limit(&self, method: &str) -> Option<u64> {
        let mut inner = self.lock();
        let (left, secs) = inner.rate_limits.get_mut(method)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*secs)
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.lock().sockets.iter().filter(|s| !s.draining).count()
    }

    pub(crate) fn socket_connections_total(&self) -> usize {
        self.lock().sockets_total
    }

    pub(crate) fn acks(&self) -> Vec<Value> {
        self.lock().acks.clone()
    }

    pub(crate) fn record_ack(&self, ack: Value) {
        self.lock().acks.push(ack);
        self.acks_seen.send_modify(|n| *n += 1);
    }

    /// Sends a frame to the longest-connected client that is still there and not being
    /// recycled; `false` when there is none.
    fn send_to_one(inner: &mut Inner, text: &str) -> bool {
        inner.sockets.retain(|s| !s.tx.is_closed());
        inner
            .sockets
            .iter()
            .filter(|s| !s.draining)
            .any(|s| s.tx.send(Frame::Text(text.to_string())).is_ok())
    }

    pub(crate) fn socket_send(&self, envelope: Value) {
        let mut inner = self.lock();
        if !Self::send_to_one(&mut inner, &envelope.to_string()) {
            inner.pending.push(envelope);
        }
    }

    pub(crate) fn socket_disconnect(&self, reason: &str) {
        let message = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": { "host": "fake-slack" },
        })
        .to_string();
        let mut inner = self.lock();
        for socket in inner.sockets.iter_mut().filter(|s| !s.draining) {
            let _ = socket.tx.send(Frame::Text(message.clone()));
            socket.draining = true;
        }
    }

    /// Registers a connection that has been sent `hello`, then hands it the envelopes pushed
    /// while nobody was connected.
    pub(crate) fn socket_opened(&self, tx: mpsc::UnboundedSender<Frame>) -> u64 {
        let id = {
            let mut inner = self.lock();
            inner.sockets_total += 1;
            let id = inner.sockets_total as u64;
            for envelope in std::mem::take(&mut inner.pending) {
                let _ = tx.send(Frame::Text(envelope.to_string()));
            }
            inner.sockets.push(Socket {
                id,
                tx,
                draining: false,
            });
            id
        };
        self.sockets_seen.send_modify(|n| *n += 1);
        id
    }

    pub(crate) fn socket_closed(&self, id: u64) {
        self.lock().sockets.retain(|s| s.id != id);
        self.sockets_seen.send_modify(|n| *n += 1);
    }

    pub(crate) fn close_sockets(&self) {
        let sockets = std::mem::take(&mut self.lock().sockets);
        for socket in sockets {
            let _ = socket.tx.send(Frame::Close);
        }
        self.sockets_seen.send_modify(|n| *n += 1);
    }
}

/// Re-evaluates `check` each time `seen` moves, until it yields something or `timeout`
/// passes. The subscription is taken before the first check, so nothing slips between them.
pub(crate) async fn wait_until<T>(
    seen: &watch::Sender<usize>,
    timeout: Duration,
    check: impl Fn() -> Option<T>,
) -> Option<T> {
    let mut changes = seen.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            // The sender lives as long as the fake; a closed channel cannot change again.
            Ok(Err(_)) | Err(_) => return check(),
        }
    }
}

/// The calls, one per line, for a panic message.
pub(crate) fn describe_calls(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "  (none)".to_string();
    }
    calls
        .iter()
        .map(|c| format!("  {} {:?} {}", c.method, c.outcome, c.params))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_increase_as_numbers_and_as_strings() {
        let mut inner = Inner::default();
        let first = inner.next_ts();
        assert_eq!(first, "1700000000.000100");
        let mut previous = first;
        for _ in 0..20_000 {
            let ts = inner.next_ts();
            assert!(ts > previous, "{ts} after {previous}");
            assert!(ts.parse::<f64>().unwrap() > previous.parse::<f64>().unwrap());
            previous = ts;
        }
    }

    #[test]
    fn a_named_user_gets_a_capitalised_real_name() {
        let user = User::named("U0ALICE", "alice");
        assert_eq!(user.real_name, "Alice");
        assert_eq!(user.display_name, "alice");
    }
}
