//! The pages over HTTP, without a browser (tests/browser.rs drives one): the timeline's frame
//! reads its URL as the API reads parameters and says what was wrong on a page of its own;
//! `/live` tells an open page each time the ledger moves on; the pages are behind the API's
//! access gate.

mod support;

use dobrobot::config::TokenHash;
use futures::StreamExt;
use serde_json::Value;

use support::read_api::Api;

/// The JSON the frame hands its script.
fn setup_of(html: &str) -> Value {
    let json = html
        .split(r#"<script type="application/json" id="setup">"#)
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the frame carries its setup");
    serde_json::from_str(json).unwrap()
}

#[tokio::test]
async fn the_timeline_reads_its_permalink_and_refuses_what_it_cannot_show() {
    let api = Api::start(|_| {}).await;
    api.run(&[("bob", "dobro #PAY-1 https://wiki/1 rounding")])
        .await;

    // An incident permalink: the window before the moment and a quarter of it after.
    let page = api
        .get("/?at=2026-11-25T03:12Z&window=2h&service=billing&outcome=rolled_back&ticket=")
        .await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    let setup = setup_of(&html);
    assert_eq!(setup["at"], "2026-11-25T03:12:00Z");
    assert_eq!(setup["since"], "2026-11-25T00:42:00Z");
    assert_eq!(setup["until"], "2026-11-25T03:42:00Z");
    assert_eq!(setup["live"], false);
    assert_eq!(setup["window_secs"], 7200);
    assert_eq!(setup["filters"]["service"], "billing");
    assert_eq!(setup["filters"]["outcome"], "rolled_back");
    assert_eq!(
        setup["filters"]["ticket"],
        Value::Null,
        "an empty field is no filter"
    );
    // The lanes: a conflict group's services together.
    assert_eq!(
        setup["lanes"],
        serde_json::json!([
            {"service": "api", "group": "backend-core"},
            {"service": "billing", "group": "backend-core"},
        ])
    );
    assert!(html.contains("<option selected>billing</option>"));

    // Without a range: the last 24 hours, following the ledger.
    let setup = setup_of(&api.get("/").await.text().await.unwrap());
    assert_eq!(setup["live"], true);
    let since: chrono::DateTime<chrono::Utc> = setup["since"].as_str().unwrap().parse().unwrap();
    let until: chrono::DateTime<chrono::Utc> = setup["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until - since, chrono::Duration::hours(24));

    for (query, parameter, says) in [
        ("at=yesterday-ish", "at", "is not a time"),
        ("at=12", "at", "not a revision"),
        (
            "since=2026-01-01&until=2026-03-01",
            "since",
            "at most 31 days",
        ),
        (
            "since=2026-03-01&until=2026-01-01",
            "since",
            "the range is empty",
        ),
        ("outcome=exploded", "outcome", "rolled_back"),
        ("colour=red", "colour", "unknown parameter"),
    ] {
        let response = api.get(&format!("/?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!("<code>{parameter}</code>")),
            "{query}: {html}"
        );
        assert!(html.contains(says), "{query}: {html}");
    }
    // The script and the stylesheet are in the binary.
    for (path, kind) in [
        ("/assets/timeline.js", "text/javascript"),
        ("/assets/timeline.css", "text/css"),
    ] {
        let response = api.get(path).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

/// Reads server-sent events until one named `ledger` arrives; its data.
async fn next_ledger_event(
    events: &mut (impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    buffer: &mut String,
) -> Value {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.lines().any(|l| l == "event: ledger") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("an event with data");
                return serde_json::from_str(data).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout(support::fixtures::WAIT, events.next())
            .await
            .expect("an event in time")
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn live_tells_an_open_page_each_time_the_ledger_moves_on() {
    let api = Api::start(|_| {}).await;
    api.run(&[("bob", "dobro #PAY-1 https://wiki/1 rounding")])
        .await;
    let response = api.get("/live").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = response.bytes_stream();
    let mut buffer = String::new();
    // Revision 0 is the policy the app recorded when it started, 1 the request.
    let first = next_ledger_event(&mut events, &mut buffer).await;
    assert_eq!(first["revision"], 1);
    assert_eq!(first["caught_up"], true);
    api.run(&[("alice", "accept PAY-1")]).await;
    let mut revision = 1;
    while revision < 2 {
        revision = next_ledger_event(&mut events, &mut buffer).await["revision"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(revision, 2);
}

#[tokio::test]
async fn the_pages_are_behind_the_api_gate() {
    let api = Api::start(|config| {
        config.http.read_tokens = vec![TokenHash::of("s3cret")];
        config.http.trusted_user_header = Some("X-Forwarded-Email".into());
    })
    .await;
    api.run(&[("bob", "dobro #PAY-1 https://wiki/1 rounding")])
        .await;
    for path in ["/", "/report", "/live", "/assets/timeline.js"] {
        assert_eq!(api.get(path).await.status(), 401, "{path}");
    }
    for path in ["/", "/report"] {
        let proxied = api
            .app
            .http
            .get(format!("{}{path}", api.app.base))
            .header("X-Forwarded-Email", "oncall@example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn what_if_marks_on_the_timeline_what_other_rules_would_have_changed() {
    let api = Api::start(|_| {}).await;
    api.run(&[
        ("bob", "dobro #PAY-1 https://wiki/1 rounding no_need_admin"),
        ("alice", "accept PAY-1"),
        ("bob", "dep start PAY-1"),
        ("bob", "dep finish PAY-1"),
    ])
    .await;
    let form = api.get("/what-if").await;
    assert_eq!(form.status(), 200);
    assert!(
        form.text()
            .await
            .unwrap()
            .contains(r#"<textarea name="policy""#)
    );

    let post = |policy: String| {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("policy", &policy)
            .append_pair("since", "2026-03-01T00:00Z")
            .append_pair("until", "2026-03-08T00:00Z")
            .finish();
        let request = api
            .app
            .http
            .post(format!("{}/what-if", api.app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        async move { request.send().await.unwrap() }
    };
    // carol approves instead of alice.
    let proposed = support::read_api::CLI_CONFIG
        .replace(r#"approvers = ["alice"]"#, r#"approvers = ["carol"]"#);
    let page = post(proposed).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let setup = setup_of(&html);
    assert_eq!(setup["live"], false);
    let kinds: Vec<&str> = setup["what_if"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["approval_not_counted", "start_refused"]);
    assert_eq!(setup["what_if"]["commands"], 4);
    assert!(html.contains(r#"<section id="what-if">"#), "{html}");
    assert!(
        html.contains("the approval by alice would not have counted"),
        "{html}"
    );

    // The same rules: no difference. A config that does not parse: a 400 page naming it.
    let same = post(support::read_api::CLI_CONFIG.to_string()).await;
    let html = same.text().await.unwrap();
    assert_eq!(
        setup_of(&html)["what_if"]["differences"],
        serde_json::json!([])
    );
    assert!(html.contains("no difference"), "{html}");
    let bad = post("ticket_pattern = \"([\"".to_string()).await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(html.contains("<code>policy</code>"), "{html}");
    assert!(html.contains("not a valid regular expression"), "{html}");
}
