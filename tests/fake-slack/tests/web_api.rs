//! The fake's Web API methods driven by the real slack-morphism client: each answer must
//! deserialize into slack-morphism's response type, and each call must be recorded with the
//! parameters the client sent.

mod support;

use std::time::{Duration, Instant};

use fake_slack::{FakeSlack, Outcome};
use serde_json::json;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use support::{app_token, bot_token, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RELEASES: &str = "C0RELEASES";

#[tokio::test]
async fn auth_test_names_the_bot_and_the_team() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);

    let me = session.auth_test().await.unwrap();

    assert_eq!(me.user_id.0, fake_slack::BOT_USER_ID);
    assert_eq!(me.team_id.0, fake_slack::TEAM_ID);
    assert_eq!(me.bot_id.map(|b| b.0), Some(fake_slack::BOT_ID.to_string()));
    assert_eq!(
        slack.calls()[0].token.as_deref(),
        Some(fake_slack::BOT_TOKEN)
    );
}

#[tokio::test]
async fn a_posted_message_gets_a_ts_and_can_be_updated_in_place() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);
    let blocks = vec![SlackBlock::Section(
        SlackSectionBlock::new().with_text(md!("*PAY-1* requested by <@U0BOB>")),
    )];

    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            RELEASES.into(),
            SlackMessageContent::new()
                .with_text("PAY-1 requested".into())
                .with_blocks(blocks),
        ))
        .await
        .unwrap();
    let second = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            RELEASES.into(),
            SlackMessageContent::new().with_text("PAY-2 requested".into()),
        ))
        .await
        .unwrap();

    assert_eq!(posted.channel.0, RELEASES);
    assert_eq!(posted.ts.0, "1700000000.000100");
    assert!(second.ts.0 > posted.ts.0);
    assert_eq!(
        posted.message.content.text.as_deref(),
        Some("PAY-1 requested")
    );
    assert_eq!(
        posted.message.sender.bot_id.map(|b| b.0),
        Some(fake_slack::BOT_ID.to_string())
    );
    let sent = &slack.calls_to("chat.postMessage")[0];
    assert_eq!(sent["channel"], RELEASES);
    assert_eq!(sent["blocks"][0]["type"], "section");
    assert_eq!(
        sent["blocks"][0]["text"]["text"],
        "*PAY-1* requested by <@U0BOB>"
    );

    let updated = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            RELEASES.into(),
            SlackMessageContent::new().with_text("PAY-1 accepted".into()),
            posted.ts.clone(),
        ))
        .await
        .unwrap();

    assert_eq!(updated.ts, posted.ts);
    assert_eq!(
        updated.message.content.text.as_deref(),
        Some("PAY-1 accepted")
    );
    let shown = slack.message(RELEASES, &posted.ts.0).unwrap();
    assert_eq!(shown["text"], "PAY-1 accepted");
    // Slack keeps the blocks an update does not replace.
    assert_eq!(shown["blocks"][0]["type"], "section");
    assert_eq!(slack.messages(RELEASES).len(), 2);
}

#[tokio::test]
async fn a_thread_reply_lands_in_the_thread_and_an_unknown_message_cannot_be_updated() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);
    let parent = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            RELEASES.into(),
            SlackMessageContent::new().with_text("PAY-1 requested".into()),
        ))
        .await
        .unwrap();

    let reply = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new(
                RELEASES.into(),
                SlackMessageContent::new().with_text("accepted by alice".into()),
            )
            .with_thread_ts(parent.ts.clone()),
        )
        .await
        .unwrap();
    let missing = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            RELEASES.into(),
            SlackMessageContent::new().with_text("nope".into()),
            "1600000000.000100".into(),
        ))
        .await;

    assert_eq!(reply.message.origin.thread_ts, Some(parent.ts.clone()));
    assert_eq!(
        slack.message(RELEASES, &parent.ts.0).unwrap()["reply_count"],
        1
    );
    match missing {
        Err(SlackClientError::ApiError(err)) => assert_eq!(err.code, "message_not_found"),
        other => panic!("expected message_not_found, got {other:?}"),
    }
    assert_eq!(
        slack.calls().last().unwrap().outcome,
        Outcome::Error("message_not_found".into())
    );
    assert!(slack.calls_to("chat.update").is_empty());
}

#[tokio::test]
async fn an_ephemeral_message_is_recorded_but_not_shown_in_the_channel() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);

    session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            RELEASES.into(),
            "U0CAROL".into(),
            SlackMessageContent::new().with_text("only approvers may accept".into()),
        ))
        .await
        .unwrap();

    let sent = &slack.calls_to("chat.postEphemeral")[0];
    assert_eq!(sent["user"], "U0CAROL");
    assert_eq!(sent["text"], "only approvers may accept");
    assert!(slack.messages(RELEASES).is_empty());
}

#[tokio::test]
async fn a_dm_is_opened_per_user_and_a_post_to_it_shows_there() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);

    let opened = session
        .conversations_open(
            &SlackApiConversationsOpenRequest::new().with_users(vec!["U0BOB".into()]),
        )
        .await
        .unwrap();
    session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            opened.channel.id.clone(),
            SlackMessageContent::new().with_text("the lock on payments is free".into()),
        ))
        .await
        .unwrap();
    let again = session
        .conversations_open_full(
            &SlackApiConversationsOpenRequest::new().with_users(vec!["U0BOB".into()]),
        )
        .await
        .unwrap();
    let stranger = session
        .conversations_open(
            &SlackApiConversationsOpenRequest::new().with_users(vec!["U0NOBODY".into()]),
        )
        .await;

    assert_eq!(opened.channel.id.0, FakeSlack::dm_channel("U0BOB"));
    assert_eq!(opened.channel.id.0, "DU0BOB");
    assert_eq!(again.channel.id.0, "DU0BOB");
    assert_eq!(again.already_open, Some(true));
    assert_eq!(again.channel.flags.is_im, Some(true));
    assert_eq!(
        slack.messages("DU0BOB")[0]["text"],
        "the lock on payments is free"
    );
    assert!(matches!(stranger, Err(SlackClientError::ApiError(e)) if e.code == "user_not_found"));
}

#[tokio::test]
async fn users_info_answers_configured_users_and_refuses_unknown_ones() {
    let slack = FakeSlack::start().await;
    slack.put_user(fake_slack::User {
        id: "U0DAVE".into(),
        name: "dave".into(),
        real_name: "Dave Lister".into(),
        display_name: String::new(),
    });
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);

    let alice = session
        .users_info(&SlackApiUsersInfoRequest::new("U0ALICE".into()))
        .await
        .unwrap();
    let dave = session
        .users_info(&SlackApiUsersInfoRequest::new("U0DAVE".into()))
        .await
        .unwrap();
    let nobody = session
        .users_info(&SlackApiUsersInfoRequest::new("U0NOBODY".into()))
        .await;

    assert_eq!(alice.user.name.as_deref(), Some("alice"));
    assert_eq!(alice.user.real_name.as_deref(), Some("Alice"));
    let profile = alice.user.profile.unwrap();
    assert_eq!(profile.display_name.as_deref(), Some("alice"));
    assert_eq!(profile.real_name.as_deref(), Some("Alice"));
    assert_eq!(dave.user.profile.unwrap().display_name.as_deref(), Some(""));
    assert!(matches!(nobody, Err(SlackClientError::ApiError(e)) if e.code == "user_not_found"));
    // slack-morphism sends users.info as a GET with a query string.
    assert_eq!(
        slack.calls_to("users.info")[0],
        json!({ "user": "U0ALICE" })
    );
}

#[tokio::test]
async fn usergroups_users_list_answers_configured_groups() {
    let slack = FakeSlack::start().await;
    slack.set_group("S0BACKUP", &["U0BOB", "U0CAROL"]);
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);

    let approvers = session
        .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new(
            "S0APPROVERS".into(),
        ))
        .await
        .unwrap();
    let backup = session
        .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new("S0BACKUP".into()))
        .await
        .unwrap();
    let missing = session
        .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new("S0NONE".into()))
        .await;

    assert_eq!(approvers.users, vec![SlackUserId::new("U0ALICE".into())]);
    assert_eq!(backup.users.len(), 2);
    assert!(matches!(missing, Err(SlackClientError::ApiError(e)) if e.code == "no_such_subteam"));
}

#[tokio::test]
async fn a_wrong_token_is_invalid_auth_and_a_token_of_the_wrong_kind_is_refused() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);

    let wrong = client
        .open_session(&SlackApiToken::new("xoxb-wrong".into()))
        .auth_test()
        .await;
    let app_on_bot_method = client.open_session(&app_token()).auth_test().await;
    let bot_on_socket = client
        .open_session(&bot_token())
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await;

    assert!(matches!(wrong, Err(SlackClientError::ApiError(e)) if e.code == "invalid_auth"));
    assert!(
        matches!(app_on_bot_method, Err(SlackClientError::ApiError(e)) if e.code == "not_allowed_token_type")
    );
    assert!(
        matches!(bot_on_socket, Err(SlackClientError::ApiError(e)) if e.code == "not_allowed_token_type")
    );
    assert_eq!(slack.calls()[0].token.as_deref(), Some("xoxb-wrong"));
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_by_slack_morphisms_rate_control() {
    let slack = FakeSlack::start().await;
    slack.rate_limit("chat.postMessage", 1, 1);
    let client = SlackClient::new(
        support::connector(&slack)
            .with_rate_control(SlackApiRateControlConfig::new().with_max_retries(3)),
    );
    let token = bot_token();
    let session = client.open_session(&token);
    let started = Instant::now();

    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            RELEASES.into(),
            SlackMessageContent::new().with_text("PAY-1 requested".into()),
        ))
        .await
        .unwrap();

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After"
    );
    let outcomes: Vec<_> = slack.calls().into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::RateLimited, Outcome::Ok]);
    assert_eq!(slack.calls_to("chat.postMessage").len(), 1);
    assert_eq!(slack.messages(RELEASES)[0]["ts"], posted.ts.0.as_str());
}

#[tokio::test]
async fn without_rate_control_a_429_surfaces_with_its_retry_after() {
    let slack = FakeSlack::start().await;
    slack.rate_limit("chat.update", 1, 7);
    let client = client(&slack);
    let token = bot_token();
    let session = client.open_session(&token);

    let limited = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            RELEASES.into(),
            SlackMessageContent::new().with_text("x".into()),
            "1700000000.000100".into(),
        ))
        .await;

    match limited {
        Err(SlackClientError::RateLimitError(err)) => {
            assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
            assert_eq!(err.code.as_deref(), Some("ratelimited"));
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
}

#[tokio::test]
async fn wait_for_sees_a_call_made_after_it_started_waiting() {
    let slack = FakeSlack::start().await;
    let client = client(&slack);
    let poster = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client
            .open_session(&bot_token())
            .chat_post_message(&SlackApiChatPostMessageRequest::new(
                RELEASES.into(),
                SlackMessageContent::new().with_text("deployment started".into()),
            ))
            .await
            .unwrap();
    });

    let seen = slack
        .wait_for(
            "chat.postMessage",
            |p| p["text"] == "deployment started",
            Duration::from_secs(5),
        )
        .await;

    assert_eq!(seen["channel"], RELEASES);
    poster.await.unwrap();
}

#[tokio::test]
#[should_panic(expected = "no matching chat.postMessage call")]
async fn wait_for_panics_with_the_calls_seen() {
    let slack = FakeSlack::start().await;
    slack
        .wait_for("chat.postMessage", |_| true, Duration::from_millis(50))
        .await;
}

/// A raw HTTP/1.1 exchange, for what slack-morphism never sends: form bodies and bad requests.
async fn raw(slack: &FakeSlack, request: &str) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(slack.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap_or(json!(body)))
}

fn post_form(method: &str, auth: Option<&str>, body: &str) -> String {
    let auth = auth
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /api/{method} HTTP/1.1\r\nHost: slack\r\n{auth}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn a_form_body_is_accepted_with_its_json_encoded_blocks_decoded() {
    let slack = FakeSlack::start().await;
    let blocks = r#"[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]"#;
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("channel", RELEASES)
        .append_pair("text", "hi")
        .append_pair("blocks", blocks)
        .finish();

    let (status, answer) = raw(
        &slack,
        &post_form("chat.postMessage", Some("xoxb-test"), &body),
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["channel"], RELEASES);
    assert_eq!(answer["message"]["blocks"][0]["type"], "section");
    assert_eq!(
        slack.calls_to("chat.postMessage")[0]["blocks"][0]["text"]["text"],
        "hi"
    );
}

#[tokio::test]
async fn a_token_may_come_as_a_form_parameter_and_its_absence_is_not_authed() {
    let slack = FakeSlack::start().await;

    let (_, with_param) = raw(&slack, &post_form("auth.test", None, "token=xoxb-test")).await;
    let (_, without) = raw(&slack, &post_form("auth.test", None, "")).await;
    let (_, unknown) = raw(&slack, &post_form("chat.delete", Some("xoxb-test"), "")).await;

    assert_eq!(with_param["ok"], true);
    assert_eq!(without, json!({ "ok": false, "error": "not_authed" }));
    assert_eq!(unknown, json!({ "ok": false, "error": "unknown_method" }));
    assert_eq!(slack.calls()[0].token.as_deref(), Some("xoxb-test"));
    assert_eq!(slack.calls()[0].params, json!({}));
}

#[tokio::test]
async fn a_429_carries_retry_after_and_slacks_error_body() {
    let slack = FakeSlack::start().await;
    slack.rate_limit("chat.postMessage", 2, 3);
    let body = "channel=C0RELEASES&text=hi";
    let request = post_form("chat.postMessage", Some("xoxb-test"), body);

    let mut stream = tokio::net::TcpStream::connect(slack.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (_, second) = raw(&slack, &request).await;
    let (_, third) = raw(&slack, &request).await;

    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 3\r\n"),
        "{response}"
    );
    let body: serde_json::Value =
        serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body, json!({ "ok": false, "error": "ratelimited" }));
    assert_eq!(second["error"], "ratelimited");
    assert_eq!(third["ok"], true);
}
