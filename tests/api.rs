//! The read API against the app as `serve` builds it (port 0): every endpoint and filter, the
//! same rows as the CLI's `--format json`, pages that stay whole across appends, CSV and NDJSON
//! exports parsed back, problems for bad input, the access gate, and the same answers on the
//! EventStoreDB double as on SQLite.

mod support;

use dobrobot::config::TokenHash;
use esdb_double::Double;
use serde_json::Value;

use support::read_api::{Api, CLI_CONFIG};

/// Two releases: PAY-1 all the way, API-7 requested and accepted, held by PAY-1's group lock
/// while PAY-1 deploys, then started; a refusal on the way.
const FLOW: [(&str, &str); 9] = [
    ("bob", "dobro #PAY-1 https://wiki/x notes"),
    ("alice", "accept PAY-1"),
    ("oleg", "here PAY-1"),
    (
        "carol",
        "dobro #API-7 https://wiki/y endpoint no_need_admin",
    ),
    ("carol", "accept API-7"),
    ("alice", "accept API-7"),
    ("bob", "dep start PAY-1"),
    ("bob", "dep finish PAY-1"),
    ("carol", "dep start API-7"),
];

#[tokio::test]
async fn listings_have_the_cli_rows_and_filters_narrow_them() {
    let api = Api::start(|_| {}).await;
    api.run(&FLOW).await;

    // The same rows as the CLI's --format json, field for field.
    assert_eq!(
        Value::Array(api.items("/api/v1/deployments").await),
        api.cli(&["deployments"])
    );
    assert_eq!(
        Value::Array(api.items("/api/v1/history").await),
        api.cli(&["history"])
    );
    assert_eq!(
        Value::Array(api.items("/api/v1/queue").await),
        api.cli(&["queue"])
    );
    assert_eq!(
        Value::Array(api.items("/api/v1/locks").await),
        api.cli(&["locks"])
    );
    assert_eq!(
        Value::Array(api.items("/api/v1/who/billing").await),
        api.cli(&["who", "billing"])
    );

    let tickets = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|i| i["ticket"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // Filters.
    let history = api.items("/api/v1/history?ticket=PAY-1").await;
    assert_eq!(history.len(), 5);
    assert!(tickets(&history).iter().all(|t| t == "PAY-1"));
    let refused = api.items("/api/v1/history?type=commandrefused").await;
    assert_eq!(refused.len(), 1, "carol accepting her own request");
    assert_eq!(refused[0]["actor"], "carol");
    let by_alice = api.items("/api/v1/history?actor=alice").await;
    assert_eq!(by_alice.len(), 2);
    let on_api = api.items("/api/v1/history?service=api").await;
    assert_eq!(tickets(&on_api), ["API-7", "API-7", "API-7", "API-7"]);
    let early = api
        .items("/api/v1/history?until=2026-03-02T09:02:00Z")
        .await;
    assert_eq!(
        early.len(),
        3,
        "the policy recorded at the start, then two commands"
    );
    let late = api
        .items("/api/v1/history?since=2026-03-02T09:08:00Z")
        .await;
    assert_eq!(late.len(), 2);

    let finished = api.items("/api/v1/deployments?outcome=finished").await;
    assert_eq!(tickets(&finished), ["PAY-1"]);
    let open = api.items("/api/v1/deployments?outcome=open").await;
    assert_eq!(tickets(&open), ["API-7"]);
    let by_oleg = api.items("/api/v1/deployments?actor=oleg").await;
    assert_eq!(tickets(&by_oleg), ["PAY-1"]);
    let on_billing = api.items("/api/v1/deployments?service=billing").await;
    assert_eq!(tickets(&on_billing), ["PAY-1"]);
    assert!(
        api.items("/api/v1/who/api?outcome=finished")
            .await
            .is_empty()
    );
    assert_eq!(tickets(&api.items("/api/v1/who/api").await), ["API-7"]);

    // The live state.
    let queue = api.items("/api/v1/queue").await;
    assert_eq!(tickets(&queue), ["API-7"]);
    assert_eq!(queue[0]["status"], "deploying");
    let locks = api.items("/api/v1/locks").await;
    assert_eq!(locks.len(), 2, "api and the backend-core group: {locks:?}");
    assert_eq!(api.json("/api/v1/freeze").await["frozen"], false);

    // Suspects: what ran on billing in the two hours before 09:10.
    let suspects = api
        .items("/api/v1/suspects?at=2026-03-02T09:10:00Z&service=billing")
        .await;
    assert_eq!(tickets(&suspects), ["PAY-1"]);
    let both = api
        .items("/api/v1/suspects?at=2026-03-02T09:10:00Z&service=billing&service=api")
        .await;
    assert_eq!(tickets(&both), ["API-7", "PAY-1"]);
    let before = api
        .items("/api/v1/suspects?at=2026-03-02T09:06:00Z&window=1h")
        .await;
    assert!(
        before.is_empty(),
        "nothing had started by 09:06: {before:?}"
    );

    // Time travel: as it was after PAY-1 started (revision 7 is its DeploymentStarted; 0 is the
    // policy the app recorded when it started).
    let replay = api.json("/api/v1/replay?at=2026-03-02T09:07:30Z").await;
    assert_eq!(replay["revision"], 7);
    assert_eq!(
        tickets(replay["queue"].as_array().unwrap()),
        ["PAY-1", "API-7"]
    );
    assert_eq!(replay, {
        let mut cli = api.cli(&["replay", "--at", "2026-03-02T09:07:30Z"]);
        cli["at"] = replay["at"].clone();
        cli
    });
    let queue_then = api.items("/api/v1/queue?at=7").await;
    assert_eq!(tickets(&queue_then), ["PAY-1", "API-7"]);
    let history_then = api.items("/api/v1/history?at=3").await;
    assert_eq!(history_then.len(), 4);
    // The policy recorded when the app started, then three commands.
    let history_by_time = api.items("/api/v1/history?at=2026-03-02T09:03:00Z").await;
    assert_eq!(history_by_time.len(), 4);

    // One event as stored (0 is the policy), and the ledger verified.
    let policy = api.json("/api/v1/events/0").await;
    assert_eq!(policy["type"], "PolicyChanged");
    assert_eq!(policy["metadata"]["actor"]["source"], "system");
    let event = api.json("/api/v1/events/1").await;
    assert_eq!(event["type"], "ReleaseRequested");
    assert_eq!(event["data"]["ticket"], "PAY-1");
    assert_eq!(event["metadata"]["actor"]["id"], "bob");
    let verified = api.json("/api/v1/verify").await;
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["events"], 10);

    // Health and readiness.
    assert_eq!(api.json("/health").await["status"], "ok");
    let ready = api.json("/ready").await;
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["lag"], 0);
    assert_eq!(ready["ledger_revision"], 9);
}

#[tokio::test]
async fn pages_follow_their_cursor_across_appends() {
    let api = Api::start(|_| {}).await;
    api.run(&FLOW[..5]).await;
    let first = api.get("/api/v1/history?limit=2").await;
    let link = first
        .headers()
        .get("link")
        .expect("a Link header while more follow")
        .to_str()
        .unwrap()
        .to_string();
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap().to_string();
    assert_eq!(link, format!("<{next}>; rel=\"next\""));
    assert!(
        next.contains("limit=2") && next.contains("cursor=1"),
        "{next}"
    );

    // More is recorded between two pages: nothing is missed or repeated.
    api.run(&FLOW[5..]).await;
    let mut revisions: Vec<u64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["revision"].as_u64().unwrap())
        .collect();
    let mut next = Some(next);
    while let Some(path) = next {
        let page = api.json(&path).await;
        revisions.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["revision"].as_u64().unwrap()),
        );
        next = page["next"].as_str().map(str::to_string);
    }
    assert_eq!(revisions, (0..10).collect::<Vec<_>>());

    // Newest first for `who`: the cursor goes back in time.
    api.run(&[
        ("carol", "dep finish API-7"),
        ("bob", "dobro #PAY-2 https://wiki/z again"),
        ("alice", "accept PAY-2"),
        ("oleg", "here PAY-2"),
        ("bob", "dep start PAY-2"),
    ])
    .await;
    let page = api.json("/api/v1/who/billing?limit=1").await;
    assert_eq!(page["items"][0]["ticket"], "PAY-2");
    let older = api.json(page["next"].as_str().unwrap()).await;
    assert_eq!(older["items"][0]["ticket"], "PAY-1");
    assert!(older["next"].is_null());
}

#[tokio::test]
async fn exports_stream_every_row_as_csv_or_ndjson() {
    let api = Api::start(|_| {}).await;
    api.run(&FLOW).await;
    let all = api.items("/api/v1/history?limit=1000").await;

    let csv = api
        .app
        .http
        .get(format!("{}/api/v1/history?limit=3", api.app.base))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers[..3], ["revision", "recorded_at", "type"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "an export with a limit stops there");

    // Without a limit, the whole listing, in chunks.
    let ndjson = api
        .app
        .http
        .get(format!("{}/api/v1/history", api.app.base))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, all);

    let csv_all = api
        .app
        .http
        .get(format!("{}/api/v1/deployments", api.app.base))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv_all.as_bytes());
    let tickets: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(tickets, ["PAY-1", "API-7"]);
}

#[tokio::test]
async fn bad_input_gets_a_problem_naming_the_parameter() {
    let api = Api::start(|_| {}).await;
    api.run(&FLOW[..2]).await;
    for (path, parameter) in [
        ("/api/v1/history?since=yesterday-ish", "since"),
        ("/api/v1/history?until=never", "until"),
        ("/api/v1/history?type=Exploded", "type"),
        ("/api/v1/history?ticket=not%20a%20ticket", "ticket"),
        ("/api/v1/history?service=Bad%20Name", "service"),
        ("/api/v1/history?actor=a%20b", "actor"),
        ("/api/v1/history?limit=0", "limit"),
        ("/api/v1/history?limit=1001", "limit"),
        ("/api/v1/history?cursor=-1", "cursor"),
        ("/api/v1/history?servce=billing", "servce"),
        ("/api/v1/history?limit=1&limit=2", "limit"),
        ("/api/v1/deployments?outcome=exploded", "outcome"),
        ("/api/v1/queue?at=tomorrow-ish", "at"),
        ("/api/v1/suspects?window=forever", "window"),
        ("/api/v1/suspects?at=12", "at"),
        ("/api/v1/replay", "at"),
        ("/api/v1/events/abc", "revision"),
        ("/api/v1/who/Bad%20Name", "service"),
    ] {
        let response = api.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 400);
        assert_eq!(
            problem["invalid-params"][0]["name"], parameter,
            "{path}: {problem}"
        );
    }
    for path in [
        "/api/v1/nothing",
        "/api/v2/queue",
        "/nothing",
        "/api/v1/events/99",
    ] {
        let response = api.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 404);
    }
}

#[tokio::test]
async fn with_tokens_configured_the_api_needs_one_and_health_stays_open() {
    let api = Api::start(|config| {
        config.http.read_tokens = vec![TokenHash::of("s3cret")];
        config.http.trusted_user_header = Some("X-Forwarded-Email".into());
    })
    .await;
    api.run(&FLOW[..1]).await;
    let response = api.get("/api/v1/queue").await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let wrong = api
        .app
        .http
        .get(format!("{}/api/v1/queue", api.app.base))
        .bearer_auth("s3cre")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = api
        .app
        .http
        .get(format!("{}/api/v1/queue", api.app.base))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let proxied = api
        .app
        .http
        .get(format!("{}/api/v1/history", api.app.base))
        .header("X-Forwarded-Email", "oncall@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(api.get("/health").await.status(), 200);
    assert_eq!(api.get("/ready").await.status(), 200);
}

#[tokio::test]
async fn the_grpc_double_answers_as_sqlite_does() {
    let double = Double::start().await;
    let on_sqlite = Api::start(|_| {}).await;
    let url = double.url();
    let on_esdb = Api::start(move |config| config.store = url).await;
    on_sqlite.run(&FLOW).await;
    on_esdb.run(&FLOW).await;
    for path in [
        "/api/v1/queue",
        "/api/v1/locks",
        "/api/v1/deployments?limit=1",
        "/api/v1/history?service=billing",
        "/api/v1/who/api",
        "/api/v1/suspects?at=2026-03-02T09:10:00Z",
        "/api/v1/queue?at=2026-03-02T09:07:30Z",
        "/api/v1/replay?at=2026-03-02T09:07:30Z",
        "/api/v1/freeze",
    ] {
        // Each event's hash covers its id and correlation, fresh on each ledger: the hashes
        // are there, and the rest is the same.
        let without_hashes = |mut page: Value| {
            for item in page["items"].as_array_mut().into_iter().flatten() {
                if let Some(entry) = item.as_object_mut() {
                    let hash = entry.remove("hash");
                    assert!(hash.is_none_or(|h| h.as_str().is_some_and(|h| h.len() == 64)));
                }
            }
            page
        };
        assert_eq!(
            without_hashes(on_sqlite.json(path).await),
            without_hashes(on_esdb.json(path).await),
            "{path}"
        );
    }
    let data = |v: Value| (v["type"].clone(), v["data"].clone());
    assert_eq!(
        data(on_sqlite.json("/api/v1/events/3").await),
        data(on_esdb.json("/api/v1/events/3").await)
    );
}

/// Schemathesis (PyPI) against the running API with its own OpenAPI document, on a ledger
/// with both releases in it: every operation, no 5xx, every status, content type, header and
/// body as the document says. It comes from the virtual environment of `DOBROBOT_PYTHON`
/// (`scripts/test` installs it); without one the test fails on CI and says it skipped
/// elsewhere.
#[tokio::test]
async fn schemathesis_finds_every_answer_as_the_document_says() {
    let python = match std::env::var("DOBROBOT_PYTHON") {
        Ok(python) if !python.is_empty() => python,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "DOBROBOT_PYTHON is not set: scripts/test sets it up"
            );
            eprintln!("skipped: DOBROBOT_PYTHON is not set (scripts/test sets it up)");
            return;
        }
    };
    let schemathesis = std::path::Path::new(&python)
        .parent()
        .expect("the interpreter's directory")
        .join("schemathesis");
    let api = Api::start(|_| {}).await;
    api.run(&FLOW).await;
    let run = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/api/openapi.json", api.app.base))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
            "--max-examples",
            "30",
            "--generation-deterministic",
        ])
        .env("NO_COLOR", "1")
        // Its cache of found failures goes to the test's temp dir, not the work tree.
        .current_dir(api.app.dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within five minutes")
        .unwrap_or_else(|e| panic!("run {}: {e}", schemathesis.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers that differ from the document ({})\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(stdout.contains("14 selected"), "every operation: {stdout}");
}

/// The CLI asked of the running serve (`--server`) answers as the CLI reading the ledger
/// itself: the same JSON rows, the same tables and CSV, the same replay and verify.
#[tokio::test]
async fn the_cli_with_server_answers_as_the_cli_on_the_ledger() {
    let api = Api::start(|config| {
        config.http.read_tokens = vec![TokenHash::of("s3cret")];
    })
    .await;
    api.run(&FLOW).await;
    let config = api.app.dir.path().join("cli.toml");
    std::fs::write(&config, CLI_CONFIG).unwrap();
    // Run without blocking the test's runtime, which serves the API.
    let cli = async |server: bool, args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"));
        command
            .arg("--config")
            .arg(&config)
            .env_remove("DOBROBOT_CONFIG")
            .env_remove("DOBROBOT_SERVER")
            .env_remove("DOBROBOT_READ_TOKEN")
            .args(args);
        if server {
            command.args(["--server", &api.app.base, "--token", "s3cret"]);
        } else {
            command.args(["--store", &api.app.config.store]);
            command.env("DOBROBOT_MODELS", api.app.config.models_path());
        }
        let output = command.output().await.unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let at = "2026-03-02T09:07:30Z";
    for args in [
        vec!["queue"],
        vec!["locks"],
        vec!["deployments"],
        vec![
            "deployments",
            "--outcome",
            "finished",
            "--service",
            "billing",
        ],
        vec!["history"],
        vec!["history", "--ticket", "PAY-1", "--type", "releaseapproved"],
        vec!["history", "--actor", "carol", "--since", "2026-03-02 09:04"],
        vec!["who", "api"],
        vec![
            "suspects",
            "--at",
            "2026-03-02T09:10:00Z",
            "--service",
            "billing",
        ],
        vec!["queue", "--revision", "6"],
        vec!["replay", "--at", at],
        vec![
            "report",
            "--since",
            "2026-03-01",
            "--until",
            "2026-03-03",
            "--per",
            "day",
        ],
    ] {
        for format in ["json", "csv", "table"] {
            let mut args = args.clone();
            args.extend(["--format", format]);
            let local = cli(false, &args).await;
            let remote = cli(true, &args).await;
            assert_eq!(local.0, Some(0), "{args:?}: {}", local.2);
            assert_eq!(remote.0, Some(0), "{args:?} with --server: {}", remote.2);
            if format == "json" {
                let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap();
                assert_eq!(parse(&local.1), parse(&remote.1), "{args:?}");
            } else {
                assert_eq!(local.1, remote.1, "{args:?}");
            }
        }
    }
    let verified = cli(true, &["verify"]).await;
    assert_eq!(verified.0, Some(0), "{}", verified.2);
    assert!(
        verified
            .1
            .starts_with("ok: 10 events in dobrobot-ledger-test")
    );

    // Without the token, the server's refusal is the error.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
        .args(["--server", &api.app.base, "queue"])
        .env_remove("DOBROBOT_READ_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
}
