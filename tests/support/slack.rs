//! Slack's payloads as its documentation shows them (an `app_mention` inside `event_callback`,
//! a `message.im`, a `block_actions` form `payload=`, a slash-command form), Slack's request
//! signature, and readers of what the fake Slack recorded.

use std::sync::atomic::{AtomicU64, Ordering};

use fake_slack::FakeSlack;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The signing secret the tests' apps verify with.
pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The release channel.
pub const CHANNEL: &str = "C0RELEASES";

/// Two releases of billing in Slack: bob's PAY-1 is deploying when carol's PAY-2, accepted,
/// is refused its start for the lock (and so waits for it).
pub const HELD_BY_A_LOCK: [(&str, &str); 6] = [
    (
        "U0BOB",
        "dobro #PAY-1 https://wiki/x fix rounding no_need_admin",
    ),
    ("U0ALICE", "accept PAY-1"),
    ("U0BOB", "dep start PAY-1"),
    (
        "U0CAROL",
        "dobro #PAY-2 https://wiki/y new invoices no_need_admin",
    ),
    ("U0ALICE", "accept PAY-2"),
    ("U0CAROL", "dep start PAY-2"),
];

/// Slack's `v0` signature of a request body sent at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn event_callback(event_id: &str, event: Value) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": fake_slack::TEAM_ID,
        "api_app_id": fake_slack::APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_764_062_400,
        "authorizations": [{
            "enterprise_id": null,
            "team_id": fake_slack::TEAM_ID,
            "user_id": fake_slack::BOT_USER_ID,
            "is_bot": true,
            "is_enterprise_install": false
        }],
        "is_ext_shared_channel": false,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0"
    })
}

pub fn app_mention(event_id: &str, user: &str, ts: &str, text: &str) -> Value {
    event_callback(
        event_id,
        json!({
            "type": "app_mention",
            "user": user,
            "text": format!("<@{}> {text}", fake_slack::BOT_USER_ID),
            "ts": ts,
            "client_msg_id": format!("msg-{event_id}"),
            "team": fake_slack::TEAM_ID,
            "channel": CHANNEL,
            "event_ts": ts
        }),
    )
}

pub fn direct_message(event_id: &str, user: &str, ts: &str, text: &str) -> Value {
    event_callback(
        event_id,
        json!({
            "type": "message",
            "channel": FakeSlack::dm_channel(user),
            "user": user,
            "text": text,
            "ts": ts,
            "client_msg_id": format!("msg-{event_id}"),
            "team": fake_slack::TEAM_ID,
            "event_ts": ts,
            "channel_type": "im"
        }),
    )
}

/// Slack gives each press its own `action_ts`.
pub static PRESSES: AtomicU64 = AtomicU64::new(1);

pub fn block_actions(user: &str, message_ts: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": fake_slack::TEAM_ID },
        "api_app_id": fake_slack::APP_ID,
        "token": "XXYYZZ",
        "container": { "type": "message", "message_ts": message_ts, "channel_id": CHANNEL, "is_ephemeral": false },
        "trigger_id": format!("1{}.98765.{action_id}", message_ts.replace('.', "")),
        "team": { "id": fake_slack::TEAM_ID, "domain": "dobro-test" },
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": { "id": CHANNEL, "name": "releases" },
        "state": { "values": {} },
        "response_url": "https://hooks.slack.com/actions/T0DOBRO/1/abc",
        "actions": [{
            "action_id": action_id,
            "block_id": "next",
            "text": { "type": "plain_text", "text": action_id, "emoji": true },
            "value": value,
            "type": "button",
            "action_ts": format!("1764062500.{:06}", PRESSES.fetch_add(1, Ordering::SeqCst))
        }]
    })
}

/// `app_home_opened` inside `event_callback`, as in Slack's Events API documentation: the person
/// opened the app's Home tab.
pub fn app_home_opened(event_id: &str, user: &str) -> Value {
    event_callback(
        event_id,
        json!({
            "type": "app_home_opened",
            "user": user,
            "channel": format!("D{}", &user[1..]),
            "tab": "home",
            "event_ts": "1764062400.000200",
        }),
    )
}

/// A global shortcut's `shortcut` payload (Slack's interaction payloads documentation).
pub fn shortcut(user: &str, callback_id: &str, trigger: &str) -> Value {
    json!({
        "type": "shortcut",
        "token": "XXYYZZ",
        "action_ts": "1764062600.000100",
        "team": { "id": fake_slack::TEAM_ID, "domain": "dobro-test" },
        "user": { "id": user, "username": user.to_lowercase(), "team_id": fake_slack::TEAM_ID },
        "is_enterprise_install": false,
        "enterprise": null,
        "callback_id": callback_id,
        "trigger_id": trigger,
    })
}

/// A `view_submission` of `view` (a modal as Slack has it: as `views.open` answered) with the
/// fields' `values` (`state.values`: block id -> action id -> value), in the shape of Slack's
/// view interactions payload documentation.
pub fn view_submission(user: &str, view: &Value, values: Value) -> Value {
    let mut view = view.clone();
    view["state"] = json!({ "values": values });
    json!({
        "type": "view_submission",
        "team": { "id": fake_slack::TEAM_ID, "domain": "dobro-test" },
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": fake_slack::TEAM_ID },
        "api_app_id": fake_slack::APP_ID,
        "token": "XXYYZZ",
        "trigger_id": format!("2{}.98765.submit", PRESSES.fetch_add(1, Ordering::SeqCst)),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null,
    })
}

/// A text field's value in `state.values`.
pub fn typed(text: &str) -> Value {
    json!({ "type": "plain_text_input", "value": text })
}

/// A button pressed in the App Home (`block_actions` from a `view` container), with a trigger
/// id as Slack gives each interaction.
pub fn home_block_actions(user: &str, view_id: &str, action_id: &str, value: &str) -> Value {
    let press = PRESSES.fetch_add(1, Ordering::SeqCst);
    json!({
        "type": "block_actions",
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": fake_slack::TEAM_ID },
        "api_app_id": fake_slack::APP_ID,
        "token": "XXYYZZ",
        "container": { "type": "view", "view_id": view_id },
        "trigger_id": format!("3{press}.98765.{action_id}"),
        "team": { "id": fake_slack::TEAM_ID, "domain": "dobro-test" },
        "enterprise": null,
        "is_enterprise_install": false,
        "view": { "id": view_id, "team_id": fake_slack::TEAM_ID, "type": "home", "blocks": [],
                  "private_metadata": "", "callback_id": "", "state": { "values": {} },
                  "hash": "1700000000.00000001", "app_id": fake_slack::APP_ID, "external_id": "",
                  "bot_id": fake_slack::BOT_ID, "root_view_id": view_id, "previous_view_id": null },
        "actions": [{
            "action_id": action_id,
            "block_id": "home",
            "text": { "type": "plain_text", "text": action_id, "emoji": true },
            "value": value,
            "type": "button",
            "action_ts": format!("1764062700.{press:06}")
        }]
    })
}

/// A `/dobro` slash command's fields, as Slack sends them (a form over HTTP, the same fields as
/// JSON in Socket Mode's `slash_commands` envelope).
pub fn slash_command_fields(user: &str, text: &str, trigger: &str) -> Value {
    json!({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": fake_slack::TEAM_ID,
        "team_domain": "dobro-test",
        "channel_id": CHANNEL,
        "channel_name": "releases",
        "user_id": user,
        "user_name": user.to_lowercase(),
        "command": "/dobro",
        "text": text,
        "api_app_id": fake_slack::APP_ID,
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T0DOBRO/34529/abcdef",
        "trigger_id": trigger,
    })
}

/// A `/dobro` slash command as the form Slack POSTs.
pub fn slash_command(user: &str, text: &str, trigger: &str) -> String {
    let fields = slash_command_fields(user, text, trigger);
    let pairs: Vec<(&str, &str)> = fields
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().expect("a string")))
        .collect();
    form(&pairs)
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    form.finish()
}

pub fn text_of(params: &Value) -> &str {
    params["text"].as_str().unwrap_or_default()
}

/// Every text of a message's blocks, joined: what a person reads in it.
pub fn blocks_text(params: &Value) -> String {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(text)) = map.get("text") {
                    out.push(text.clone());
                }
                for (key, v) in map {
                    if key != "text" || !v.is_string() {
                        collect(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(&params["blocks"], &mut out);
    out.join("\n")
}

/// A value as a test prints it.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

/// Every `chat.postMessage` to `channel` that is not a thread reply.
pub fn top_level_posts(slack: &FakeSlack, channel: &str) -> Vec<Value> {
    slack
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|p| p["channel"] == channel && p.get("thread_ts").is_none())
        .collect()
}
