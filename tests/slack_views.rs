//! The App Home tab and the modals, against the fake Slack with payloads in the shapes of
//! Slack's documentation (`app_home_opened`, `shortcut`, `view_submission`, `block_actions`
//! with a trigger id): what is published or opened is snapshotted, a submitted modal becomes
//! the command it stands for, and a request that fails the ticket checks is answered with
//! `response_action: errors` on its fields, recording nothing.

mod support;

use insta::assert_snapshot;
use serde_json::{Value, json};

use support::app::TestApp;
use support::fixtures::{WAIT, wait_until};
use support::slack::{
    CHANNEL, app_home_opened, app_mention, home_block_actions, pretty, shortcut, text_of, typed,
    view_submission,
};

/// A view without what changes from run to run: the clock's parts (an age, the time it is
/// as of) and the ids the fake Slack gives each published view.
fn steady(view: &Value) -> String {
    let mut view = view.clone();
    for field in ["id", "hash", "root_view_id"] {
        view[field] = json!("[given by Slack]");
    }
    let text = pretty(&view);
    let age = regex::Regex::new(r"for \d+ (s|min)").unwrap();
    let now = regex::Regex::new(r"As of \d{4}-\d\d-\d\d \d\d:\d\d UTC").unwrap();
    let text = age.replace_all(&text, "for [age]");
    now.replace_all(&text, "As of [now]").into_owned()
}

/// Waits until no App Home has been published for half a second (the presenter has shown
/// every step so far, and published the Homes they concern).
async fn publications_settle(app: &TestApp) {
    let mut seen = app.slack.calls_to("views.publish").len();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = app.slack.calls_to("views.publish").len();
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// The number of Homes published for `user` so far.
fn publications(app: &TestApp, user: &str) -> usize {
    app.slack
        .calls_to("views.publish")
        .iter()
        .filter(|p| p["user_id"] == user)
        .count()
}

/// The view published for `user`'s App Home after `before` publications.
async fn home_of(app: &TestApp, user: &str, before: usize) -> Value {
    wait_until(|| async {
        app.slack
            .calls_to("views.publish")
            .iter()
            .filter(|p| p["user_id"] == user)
            .count()
            > before
    })
    .await;
    app.slack.home(user).expect("a published home")
}

/// Records `text` from `user` by mentioning the bot, and waits for it.
async fn say(app: &TestApp, event_id: &str, user: &str, text: &str) {
    let before = app.ledger_events().await.len();
    let ts = format!("1764062400.{:06}", before + 100);
    assert_eq!(
        app.event(&app_mention(event_id, user, &ts, text))
            .await
            .status(),
        200
    );
    wait_until(|| async { app.ledger_events().await.len() > before }).await;
}

#[tokio::test]
async fn the_app_home_shows_my_requests_what_waits_for_me_the_queue_and_the_locks() {
    let app = TestApp::spawn_with(
        |_| {},
        |config| config.http.public_url = Some("https://dobrobot.example.com".into()),
    )
    .await;
    say(
        &app,
        "Ev01",
        "U0BOB",
        "dobro #PAY-1 https://wiki/1 fix rounding no_need_admin",
    )
    .await;
    say(&app, "Ev02", "U0ALICE", "accept PAY-1").await;
    say(&app, "Ev03", "U0BOB", "dep start PAY-1").await;
    say(
        &app,
        "Ev04",
        "U0CAROL",
        "dobro #PAY-2 https://wiki/2 new invoices",
    )
    .await;
    app.followed_reaches_the_ledger().await;
    publications_settle(&app).await;

    // bob's own release is deploying: Finish and Rollback; the queue and the lock below.
    let published = publications(&app, "U0BOB");
    assert_eq!(
        app.event(&app_home_opened("EvH1", "U0BOB")).await.status(),
        200
    );
    let bob = home_of(&app, "U0BOB", published).await;
    assert_snapshot!("home_of_the_requester", steady(&bob));

    // alice approves: carol's request waits for her, with Accept and Reject.
    let published = publications(&app, "U0ALICE");
    app.event(&app_home_opened("EvH2", "U0ALICE")).await;
    let alice = home_of(&app, "U0ALICE", published).await;
    assert_snapshot!("home_of_an_approver", steady(&alice));

    // Pressing Accept in the Home runs `accept PAY-2`; alice is told in her DM, and her Home
    // is published again without it.
    let press = home_block_actions(
        "U0ALICE",
        alice["id"].as_str().unwrap(),
        "accept",
        "accept PAY-2",
    );
    assert_eq!(app.interact(&press).await.status(), 200);
    let dm = app.wait_dm("U0ALICE").await;
    assert!(text_of(&dm).contains("accepted"), "{dm}");
    // Her Home is published again without it.
    wait_until(|| async {
        app.slack
            .home("U0ALICE")
            .is_some_and(|home| !pretty(&home).contains("accept PAY-2"))
    })
    .await;
    assert!(
        app.ledger_events()
            .await
            .iter()
            .any(|e| e.starts_with("ReleaseApproved"))
    );
}

#[tokio::test]
async fn the_shortcut_and_dobro_alone_open_the_request_modal_whose_submission_is_the_request() {
    let app = TestApp::spawn().await;
    let response = app
        .interact(&shortcut("U0BOB", "request_release", "111.222.shortcut"))
        .await;
    assert_eq!(response.status(), 200);
    let opened = app
        .slack
        .wait_for(
            "views.open",
            |p| p["trigger_id"] == "111.222.shortcut",
            WAIT,
        )
        .await;
    assert_snapshot!("the_request_modal", pretty(&opened["view"]));
    // `/dobro` with nothing after it opens the same modal.
    app.slash("U0BOB", "", "333.444.slash").await;
    let again = app
        .slack
        .wait_for("views.open", |p| p["trigger_id"] == "333.444.slash", WAIT)
        .await;
    assert_eq!(again["view"], opened["view"]);

    let modal = app.slack.modals()[0].clone();
    let fields = |ticket: &str, wiki: Option<&str>| {
        let mut values = json!({
            "ticket": {"ticket": typed(ticket)},
            "comment": {"comment": typed("fix rounding\nin invoices")},
            "services": {"services": {"type": "multi_static_select", "selected_options": []}},
            "admin": {"admin": {"type": "checkboxes", "selected_options": []}},
        });
        if let Some(wiki) = wiki {
            values["wiki"] = json!({"wiki": typed(wiki)});
        }
        values
    };
    // A ticket key that is not one, and no release notes link: both are shown on their fields,
    // and nothing is recorded.
    let before = app.ledger_events().await.len();
    for (values, field) in [
        (fields("pay one", Some("https://wiki/1")), "ticket"),
        (fields("PAY-1", None), "wiki"),
    ] {
        let response = app
            .interact(&view_submission("U0BOB", &modal, values))
            .await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["response_action"], "errors", "{answer}");
        assert!(answer["errors"][field].is_string(), "{answer}");
        assert_eq!(answer["errors"].as_object().unwrap().len(), 1, "{answer}");
    }
    let errors: Value = app
        .interact(&view_submission("U0BOB", &modal, fields("PAY-1", None)))
        .await
        .json()
        .await
        .unwrap();
    assert_snapshot!("the_request_modal_with_a_missing_link", pretty(&errors));
    assert_eq!(app.ledger_events().await.len(), before, "nothing recorded");

    // Filled in: the modal closes (an empty 200) and the request is recorded as typed.
    let response = app
        .interact(&view_submission(
            "U0BOB",
            &modal,
            fields("PAY-1", Some("https://wiki/1")),
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "");
    wait_until(|| async { app.ledger_events().await.len() > before }).await;
    let posted = app
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["channel"] == CHANNEL && p.get("thread_ts").is_none(),
            WAIT,
        )
        .await;
    assert!(text_of(&posted).contains("PAY-1"), "{posted}");
    let dm = app.wait_dm("U0BOB").await;
    assert!(text_of(&dm).contains("fix rounding in invoices"), "{dm}");
    let events = app.ledger_events().await;
    assert!(
        events.last().unwrap().starts_with("ReleaseRequested"),
        "{events:?}"
    );
}

#[tokio::test]
async fn reject_and_rollback_ask_why_in_a_modal_and_record_the_reason_given() {
    let app = TestApp::spawn().await;
    say(
        &app,
        "Ev01",
        "U0BOB",
        "dobro #PAY-1 https://wiki/1 fix rounding no_need_admin",
    )
    .await;
    let ts = app.release_message_ts("PAY-1").await;

    // Reject: a modal asking why, for this message; nothing recorded yet.
    let before = app.ledger_events().await.len();
    app.press("U0ALICE", &ts, "reject", "reject PAY-1").await;
    let opened = app.slack.wait_for("views.open", |_| true, WAIT).await;
    let modal = app.slack.modals()[0].clone();
    assert_snapshot!("the_reject_modal", pretty(&opened["view"]));
    assert_eq!(app.ledger_events().await.len(), before);
    let response = app
        .interact(&view_submission(
            "U0ALICE",
            &modal,
            json!({"reason": {"reason": typed("no release notes\nfor finance")}}),
        ))
        .await;
    assert_eq!(response.status(), 200);
    wait_until(|| async { app.ledger_events().await.len() > before }).await;
    let updated = app.wait_update(&ts, "Rejected").await;
    assert!(
        pretty(&updated).contains("no release notes for finance"),
        "{}",
        pretty(&updated)
    );

    // Rollback, the same way.
    say(
        &app,
        "Ev02",
        "U0BOB",
        "dobro #PAY-2 https://wiki/2 taxes no_need_admin",
    )
    .await;
    let ts = app.release_message_ts("PAY-2").await;
    say(&app, "Ev03", "U0ALICE", "accept PAY-2").await;
    say(&app, "Ev04", "U0BOB", "dep start PAY-2").await;
    let before = app.ledger_events().await.len();
    app.press("U0BOB", &ts, "rollback", "dep rollback PAY-2")
        .await;
    wait_until(|| async { app.slack.modals().len() == 2 }).await;
    let modal = app.slack.modals()[1].clone();
    assert_eq!(modal["title"]["text"], "Roll back");
    app.interact(&view_submission(
        "U0BOB",
        &modal,
        json!({"reason": {"reason": typed("errors on checkout")}}),
    ))
    .await;
    wait_until(|| async { app.ledger_events().await.len() > before }).await;
    let updated = app.wait_update(&ts, "Rolled back").await;
    assert!(pretty(&updated).contains("errors on checkout"));
}

/// With `[http] public_url`, the answers to `history`, `who` and `suspects` end with a link to
/// the timeline showing the same; without it, they do not.
#[tokio::test]
async fn history_who_and_suspects_end_with_a_permalink_to_the_timeline() {
    let app = TestApp::spawn_with(
        |_| {},
        |config| config.http.public_url = Some("https://dobrobot.example.com/".into()),
    )
    .await;
    say(
        &app,
        "Ev01",
        "U0BOB",
        "dobro #PAY-1 https://wiki/1 fix no_need_admin",
    )
    .await;
    say(&app, "Ev02", "U0ALICE", "accept PAY-1").await;
    say(&app, "Ev03", "U0BOB", "dep start PAY-1").await;
    app.followed_reaches_the_ledger().await;
    let reply_to = |ts: &'static str| {
        let app = &app;
        async move {
            app.slack
                .wait_for("chat.postMessage", |p| p["thread_ts"] == ts, WAIT)
                .await
        }
    };
    let link =
        regex::Regex::new(r"On the timeline: (https://dobrobot\.example\.com/\?\S+)$").unwrap();
    let query_of = |text: &str| -> Vec<(String, String)> {
        let url = link
            .captures(text)
            .unwrap_or_else(|| panic!("no link in {text}"))[1]
            .replace("&amp;", "&");
        form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect()
    };

    app.event(&app_mention(
        "Ev10",
        "U0CAROL",
        "1764070000.000100",
        "history ticket=PAY-1",
    ))
    .await;
    let history = text_of(&reply_to("1764070000.000100").await).to_string();
    let query = query_of(&history);
    assert_eq!(query[0], ("ticket".into(), "PAY-1".into()), "{history}");
    assert_eq!(query[1].0, "since");
    assert_eq!(query[2].0, "until");

    app.event(&app_mention(
        "Ev11",
        "U0CAROL",
        "1764070000.000200",
        "who billing",
    ))
    .await;
    let who = text_of(&reply_to("1764070000.000200").await).to_string();
    assert_eq!(
        query_of(&who)[0],
        ("service".into(), "billing".into()),
        "{who}"
    );

    app.event(&app_mention(
        "Ev12",
        "U0CAROL",
        "1764070000.000300",
        "suspects window=90m services=billing",
    ))
    .await;
    let suspects = text_of(&reply_to("1764070000.000300").await).to_string();
    assert!(suspects.contains("PAY-1"), "{suspects}");
    assert!(suspects.contains("still deploying"), "{suspects}");
    let query = query_of(&suspects);
    assert_eq!(query[0].0, "at");
    assert_eq!(query[1], ("window".into(), "90m".into()));
    assert_eq!(query[2], ("service".into(), "billing".into()));

    // Without a public address there is no link.
    let plain = TestApp::spawn().await;
    say(
        &plain,
        "Ev01",
        "U0BOB",
        "dobro #PAY-1 https://wiki/1 fix no_need_admin",
    )
    .await;
    plain.followed_reaches_the_ledger().await;
    plain
        .event(&app_mention(
            "Ev10",
            "U0CAROL",
            "1764070000.000100",
            "history ticket=PAY-1",
        ))
        .await;
    let reply = plain
        .slack
        .wait_for(
            "chat.postMessage",
            |p| p["thread_ts"] == "1764070000.000100",
            WAIT,
        )
        .await;
    assert!(!text_of(&reply).contains("On the timeline"), "{reply}");
}

/// A step taken anywhere (here a button on the release message) publishes the Homes of those
/// it concerns again: the requester's shows the next step without being opened again.
#[tokio::test]
async fn a_step_taken_elsewhere_refreshes_the_requesters_home() {
    let app = TestApp::spawn().await;
    say(
        &app,
        "Ev01",
        "U0BOB",
        "dobro #PAY-1 https://wiki/1 fix rounding no_need_admin",
    )
    .await;
    let ts = app.release_message_ts("PAY-1").await;
    // The request's own step already published bob's Home (he asked) and alice's (it waits
    // for her approval).
    let before = home_of(&app, "U0BOB", 0).await;
    assert!(
        pretty(&before).contains("cancel PAY-1"),
        "{}",
        pretty(&before)
    );
    assert!(!pretty(&before).contains("dep start PAY-1"));
    let alice = home_of(&app, "U0ALICE", 0).await;
    assert!(
        pretty(&alice).contains("accept PAY-1"),
        "{}",
        pretty(&alice)
    );
    let published = publications(&app, "U0BOB");

    app.press("U0ALICE", &ts, "accept", "accept PAY-1").await;
    wait_until(|| async {
        app.slack
            .home("U0BOB")
            .is_some_and(|home| pretty(&home).contains("dep start PAY-1"))
    })
    .await;
    assert!(publications(&app, "U0BOB") > published);
    // And alice's no longer offers to accept it.
    let alice = app.slack.home("U0ALICE").unwrap();
    assert!(
        !pretty(&alice).contains("accept PAY-1"),
        "{}",
        pretty(&alice)
    );
}
