//! Socket Mode envelopes in Slack's shape, for tests to push with
//! [`crate::FakeSlack::socket_send`].
//!
//! An envelope wraps the same payload the HTTP transports carry (an `event_callback` body, a
//! `block_actions` payload, a slash command's fields as a JSON object) with an `envelope_id`
//! the client must acknowledge, `accepts_response_payload` (whether the ack may carry a
//! response), and, for Events API envelopes, `retry_attempt` / `retry_reason` (0 and `""` on
//! the first delivery). Build the payload itself in the test, in the shape Slack documents.

use serde_json::{Value, json};

/// An `events_api` envelope around an `event_callback` payload, first delivery.
pub fn events_api(envelope_id: &str, payload: Value) -> Value {
    events_api_retry(envelope_id, payload, 0, "")
}

/// An `events_api` envelope redelivered: `retry_attempt` 1, 2, ... with Slack's reason
/// (`"timeout"` when the previous delivery was not acknowledged in time).
pub fn events_api_retry(
    envelope_id: &str,
    payload: Value,
    retry_attempt: u32,
    retry_reason: &str,
) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "events_api",
        "payload": payload,
        "accepts_response_payload": false,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    })
}

/// An `interactive` envelope (a `block_actions`, `view_submission`, ... payload).
/// `accepts_response_payload` is false for `block_actions`; Slack sets it for payloads that
/// take a response, such as `block_suggestion` and `view_submission`.
pub fn interactive(envelope_id: &str, payload: Value, accepts_response_payload: bool) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "interactive",
        "payload": payload,
        "accepts_response_payload": accepts_response_payload,
    })
}

/// A `slash_commands` envelope: the command's form fields as a JSON object (`command`,
/// `text`, `user_id`, `channel_id`, `team_id`, `response_url`, `trigger_id`, ...). Slack
/// accepts a response payload in the ack of a slash command.
pub fn slash_commands(envelope_id: &str, payload: Value) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "payload": payload,
        "accepts_response_payload": true,
    })
}
