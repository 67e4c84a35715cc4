//! The Web API methods the bot calls, each answering with the fields Slack documents for it
//! (the `"ok"` flag is added by the caller) or with one of Slack's error codes for it.
//!
//! Only what a release bot needs is modelled, but what is modelled behaves like Slack: a
//! posted message gets a fresh `ts` and shows up in its channel, `chat.update` edits a message
//! that exists (and answers `message_not_found` otherwise) and keeps the blocks it is not
//! given, posting to a user id lands in the DM with that user, ephemeral messages are not part
//! of any channel.

use serde_json::{Map, Value, json};

use crate::state::{Inner, Shared};
use crate::{
    APP_ID, BOT_ID, BOT_USER_ID, BOT_USER_NAME, TEAM_ID, TEAM_NAME, TEAM_URL, state::User,
};

type Answer = Result<Map<String, Value>, &'static str>;
type Params = Map<String, Value>;

/// Content fields of a message, as chat.postMessage and chat.update take them.
const CONTENT_FIELDS: &[&str] = &["text", "blocks", "attachments", "metadata"];

pub(crate) fn answer(shared: &Shared, method: &str, params: &Params) -> Answer {
    let mut inner = shared.lock();
    match method {
        "auth.test" => Ok(auth_test()),
        "chat.postMessage" => chat_post_message(&mut inner, params),
        "chat.update" => chat_update(&mut inner, params),
        "chat.postEphemeral" => chat_post_ephemeral(&mut inner, params),
        "conversations.open" => conversations_open(&inner, params),
        "users.info" => users_info(&inner, params),
        "usergroups.users.list" => usergroups_users_list(&inner, params),
        "views.publish" => views_publish(&mut inner, params),
        "views.open" => views_open(&mut inner, params),
        "apps.connections.open" => {
            inner.tickets_issued += 1;
            let ticket = format!("fake-ticket-{}", inner.tickets_issued);
            inner.tickets.push(ticket.clone());
            Ok(object(json!({
                "url": format!("ws://{}/socket?ticket={ticket}&app_id={APP_ID}", shared.addr),
            })))
        }
        _ => Err("unknown_method"),
    }
}

/// The DM channel with a user: `"D"` followed by the user id.
pub(crate) fn dm_channel(user: &str) -> String {
    format!("D{user}")
}

fn auth_test() -> Map<String, Value> {
    object(json!({
        "url": TEAM_URL,
        "team": TEAM_NAME,
        "user": BOT_USER_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": false,
    }))
}

fn chat_post_message(inner: &mut Inner, params: &Params) -> Answer {
    let channel = resolve_channel(str_param(params, "channel").ok_or("channel_not_found")?);
    if !has_content(params) {
        return Err("no_text");
    }
    let thread_ts = str_param(params, "thread_ts").map(str::to_string);
    let ts = inner.next_ts();
    let mut message = object(json!({
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": str_param(params, "text").unwrap_or(""),
        "ts": ts,
    }));
    copy_content(params, &mut message);
    let messages = inner.channels.entry(channel.clone()).or_default();
    if let Some(thread_ts) = &thread_ts {
        message.insert("thread_ts".into(), json!(thread_ts));
        message.insert("parent_user_id".into(), json!(BOT_USER_ID));
        if let Some(parent) = messages.iter_mut().find(|m| m["ts"] == thread_ts.as_str()) {
            let replies = parent["reply_count"].as_u64().unwrap_or(0) + 1;
            parent["thread_ts"] = json!(thread_ts);
            parent["reply_count"] = json!(replies);
            parent["latest_reply"] = json!(ts);
        }
    }
    let message = Value::Object(message);
    messages.push(message.clone());
    Ok(object(
        json!({ "channel": channel, "ts": ts, "message": message }),
    ))
}

fn chat_update(inner: &mut Inner, params: &Params) -> Answer {
    let channel = resolve_channel(str_param(params, "channel").ok_or("channel_not_found")?);
    let ts = str_param(params, "ts")
        .ok_or("message_not_found")?
        .to_string();
    if !has_content(params) {
        return Err("no_text");
    }
    let edited_ts = inner.next_ts();
    let message = inner
        .channels
        .get_mut(&channel)
        .and_then(|messages| messages.iter_mut().find(|m| m["ts"] == ts.as_str()))
        .ok_or("message_not_found")?;
    if message["user"] != BOT_USER_ID {
        return Err("cant_update_message");
    }
    let stored = message
        .as_object_mut()
        .expect("the fake stores messages as objects");
    // Slack keeps the blocks and attachments it is not given, and replaces the text.
    stored.insert(
        "text".into(),
        json!(str_param(params, "text").unwrap_or("")),
    );
    copy_content(params, stored);
    stored.insert(
        "edited".into(),
        json!({ "user": BOT_USER_ID, "ts": edited_ts }),
    );

    let mut shown = Map::new();
    for key in [
        "type",
        "user",
        "bot_id",
        "app_id",
        "team",
        "text",
        "blocks",
        "attachments",
        "metadata",
        "edited",
    ] {
        if let Some(value) = stored.get(key) {
            shown.insert(key.into(), value.clone());
        }
    }
    let mut answer = object(json!({
        "channel": channel,
        "ts": ts,
        "text": stored["text"],
        "message": shown,
    }));
    if let Some(thread_ts) = stored.get("thread_ts").filter(|t| **t != ts.as_str()) {
        answer.insert("thread_ts".into(), thread_ts.clone());
    }
    Ok(answer)
}

fn chat_post_ephemeral(inner: &mut Inner, params: &Params) -> Answer {
    str_param(params, "channel").ok_or("channel_not_found")?;
    let user = str_param(params, "user").ok_or("user_not_found")?;
    if !inner.users.contains_key(user) {
        return Err("user_not_found");
    }
    if !has_content(params) {
        return Err("no_text");
    }
    Ok(object(json!({ "message_ts": inner.next_ts() })))
}

fn conversations_open(inner: &Inner, params: &Params) -> Answer {
    if let Some(channel) = str_param(params, "channel") {
        return Ok(object(json!({
            "no_op": true,
            "already_open": true,
            "channel": { "id": channel },
        })));
    }
    // A comma-separated string per Slack's docs; slack-morphism sends a JSON array.
    let users: Vec<String> = match params.get("users") {
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let [user] = users.as_slice() else {
        return Err(if users.is_empty() {
            "users_list_not_supplied"
        } else {
            // Multi-person DMs are not something a release bot opens.
            "method_not_supported_for_channel_type"
        });
    };
    if !inner.users.contains_key(user) {
        return Err("user_not_found");
    }
    let id = dm_channel(user);
    let already_open = inner.channels.contains_key(&id);
    let return_im =
        matches!(params.get("return_im"), Some(v) if v == true || v == "true" || v == "1");
    let channel = if return_im {
        json!({
            "id": id,
            "created": 1_700_000_000,
            "is_im": true,
            "is_org_shared": false,
            "user": user,
            "last_read": "0000000000.000000",
            "latest": null,
            "unread_count": 0,
            "unread_count_display": 0,
            "is_open": true,
            "priority": 0,
        })
    } else {
        json!({ "id": id })
    };
    let mut answer = object(json!({ "channel": channel }));
    if already_open {
        answer.insert("no_op".into(), json!(true));
        answer.insert("already_open".into(), json!(true));
    }
    Ok(answer)
}

fn users_info(inner: &Inner, params: &Params) -> Answer {
    let id = str_param(params, "user").ok_or("user_not_found")?;
    let user = inner.users.get(id).ok_or("user_not_found")?;
    Ok(object(json!({ "user": user_object(user) })))
}

fn user_object(user: &User) -> Value {
    json!({
        "id": user.id,
        "team_id": TEAM_ID,
        "name": user.name,
        "deleted": false,
        "color": "9f69e7",
        "real_name": user.real_name,
        "tz": "Europe/Amsterdam",
        "tz_label": "Central European Time",
        "tz_offset": 3600,
        "profile": {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "status_text": "",
            "status_emoji": "",
            "team": TEAM_ID,
        },
        "is_admin": false,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": false,
        "is_ultra_restricted": false,
        "is_bot": false,
        "is_app_user": false,
        "updated": 1_700_000_000,
        "has_2fa": false,
    })
}

fn usergroups_users_list(inner: &Inner, params: &Params) -> Answer {
    let group = str_param(params, "usergroup").ok_or("no_such_subteam")?;
    let users = inner.groups.get(group).ok_or("no_such_subteam")?;
    Ok(object(json!({ "users": users })))
}

/// A user id as a channel means the DM with that user, as in Slack.
fn resolve_channel(channel: &str) -> String {
    if channel.starts_with('U') || channel.starts_with('W') {
        dm_channel(channel)
    } else {
        channel.to_string()
    }
}

fn has_content(params: &Params) -> bool {
    let non_empty = |key: &str| match params.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    non_empty("text") || non_empty("blocks") || non_empty("attachments")
}

/// Copies the given content fields but `text` (which the callers set themselves).
fn copy_content(params: &Params, message: &mut Map<String, Value>) {
    for key in CONTENT_FIELDS.iter().filter(|k| **k != "text") {
        if let Some(value) = params.get(*key) {
            message.insert((*key).to_string(), value.clone());
        }
    }
}

fn str_param<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// A view as Slack answers with it: what was sent, with the fields Slack adds (as in the
/// `views.publish` and `views.open` examples of Slack's API documentation).
fn stored_view(inner: &mut Inner, view: &Value) -> Value {
    inner.views_issued += 1;
    let id = format!("V0FAKE{:04}", inner.views_issued);
    let mut stored = json!({
        "id": id, "team_id": TEAM_ID, "state": {"values": {}},
        "hash": format!("1700000000.{:08}", inner.views_issued),
        "private_metadata": "", "callback_id": "", "external_id": "",
        "clear_on_close": false, "notify_on_close": false,
        "previous_view_id": null, "root_view_id": id, "app_id": APP_ID, "bot_id": BOT_ID,
    });
    for (key, value) in view.as_object().into_iter().flatten() {
        stored[key] = value.clone();
    }
    stored
}

/// `views.publish`: a user's App Home tab. The view must be a `home` view.
fn views_publish(inner: &mut Inner, params: &Params) -> Answer {
    let user = str_param(params, "user_id").ok_or("invalid_arguments")?;
    let view = params.get("view").ok_or("invalid_arguments")?;
    if view["type"] != "home" {
        return Err("invalid_arguments");
    }
    if !inner.users.contains_key(user) && !user.starts_with('U') {
        return Err("user_not_found");
    }
    let stored = stored_view(inner, view);
    inner.homes.insert(user.to_string(), stored.clone());
    Ok(object(json!({ "view": stored })))
}

/// `views.open`: a modal, once per trigger id.
fn views_open(inner: &mut Inner, params: &Params) -> Answer {
    let trigger = str_param(params, "trigger_id").ok_or("invalid_arguments")?;
    let view = params.get("view").ok_or("invalid_arguments")?;
    if view["type"] != "modal" {
        return Err("invalid_arguments");
    }
    if inner.triggers_used.iter().any(|t| t == trigger) {
        return Err("exchanged_trigger_id");
    }
    inner.triggers_used.push(trigger.to_string());
    let stored = stored_view(inner, view);
    inner.modals.push(stored.clone());
    Ok(object(json!({ "view": stored })))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("only called with object literals"),
    }
}
