//! The deploy gate with real child processes: `dobrobot deploy` runs `sh`, on the ledger of a
//! temp dir (local) or against a `serve` built by `App::build` on a free port (remote, through
//! the write API with a pipeline token). Each test reads what was recorded back from the ledger.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dobrobot::config::{PipelineRole, PipelineToken, TokenHash};
use serde_json::{Value, json};

mod support;

use support::app::TestApp;
use support::fixtures::u;
use support::site::{Site, stderr, stdout};

/// The gate's options that keep a test short: it asks the queue often, and says it is alive
/// every second.
const QUICK: [&str; 4] = ["--poll", "100ms", "--heartbeat", "1s"];

/// PAY-1 by bob, accepted by alice, no admin needed: ready to start.
fn ready(site: &Site, ticket: &str, requester: &str) {
    site.done(
        requester,
        &format!("dobro #{ticket} https://wiki/x notes no_need_admin"),
    );
    site.done("alice", &format!("accept {ticket}"));
}

/// `deploy --as WHO TICKET [options] -- sh -c SCRIPT`.
fn gate(who: &str, ticket: &str, options: &[&str], script: &str) -> Vec<String> {
    let mut args: Vec<String> = ["deploy", "--as", who, ticket]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(QUICK.iter().map(|s| s.to_string()));
    args.extend(options.iter().map(|s| s.to_string()));
    args.extend(["--", "sh", "-c", script].iter().map(|s| s.to_string()));
    args
}

/// The ticket's events in the ledger: (type, data, actor source).
fn events(site: &Site, ticket: &str) -> Vec<(String, Value, String)> {
    site.json(&["history", "--ticket", ticket])
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().expect("a type").to_string(),
                e["event"]["data"].clone(),
                e["source"].as_str().expect("a source").to_string(),
            )
        })
        .collect()
}

fn types(events: &[(String, Value, String)]) -> Vec<&str> {
    events.iter().map(|(t, _, _)| t.as_str()).collect()
}

/// The events of the ledger's whole history.
fn ledger_length(site: &Site) -> usize {
    site.json(&["history"]).as_array().expect("a list").len()
}

/// Starts the gate as a process with its pipes held.
fn spawn(site: &Site, args: &[String]) -> Child {
    let mut cmd = support::site::bare_process(site.path());
    cmd.arg("--config").arg(&site.config).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("start dobrobot deploy")
}

/// Reads `child`'s stderr until a line contains `fragment`; the lines read.
fn stderr_until(child: &mut Child, fragment: &str) -> Vec<String> {
    let pipe = child.stderr.take().expect("stderr is piped");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end, so the gate never writes to a closed pipe.
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(fragment);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
    panic!(
        "no line with `{fragment}` on stderr; read:\n{}",
        seen.join("\n")
    );
}

fn wait_for(mut child: Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the gate") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gate did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_command_that_succeeds_is_started_kept_alive_and_finished() {
    let site = Site::new();
    ready(&site, "PAY-1", "bob");
    let output = site
        .cmd(
            &gate("bob", "PAY-1", &[], "echo deploying billing; sleep 2.5")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .output()
        .expect("run the gate");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "deploying billing\n",
        "output passed through"
    );
    let recorded = events(&site, "PAY-1");
    let kinds = types(&recorded);
    assert_eq!(
        kinds[..3],
        ["ReleaseRequested", "ReleaseApproved", "DeploymentStarted"]
    );
    assert_eq!(kinds.last(), Some(&"DeploymentFinished"));
    assert!(
        !kinds.contains(&"CommandRefused"),
        "no sign of life after the end: {kinds:?}"
    );
    let alive: Vec<_> = recorded
        .iter()
        .filter(|(t, _, _)| t == "DeploymentAlive")
        .collect();
    assert!(alive.len() >= 2, "a sign of life each second: {kinds:?}");
    assert_eq!(alive[0].1["within_secs"], 3, "three heartbeats");
    assert!(recorded.iter().all(|(_, _, source)| source == "cli"));
}

#[test]
fn a_failing_command_is_rolled_back_with_its_exit_status_which_the_gate_exits_with() {
    let site = Site::new();
    ready(&site, "PAY-1", "bob");
    let args = gate("bob", "PAY-1", &[], "echo broken >&2; exit 3");
    let output = site
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .expect("run the gate");
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("broken"), "{}", stderr(&output));
    let recorded = events(&site, "PAY-1");
    let (kind, data, _) = recorded.last().expect("events");
    assert_eq!(kind, "DeploymentRolledBack");
    let reason = data["reason"].as_str().expect("a reason");
    assert!(reason.contains("exited with status 3"), "{reason}");
    // The locks are free again: the next release of billing may start.
    ready(&site, "PAY-2", "carol");
    site.done("carol", "dep start PAY-2");
}

#[test]
fn a_cancelled_job_passes_sigterm_on_and_is_rolled_back() {
    let site = Site::new();
    ready(&site, "PAY-1", "bob");
    // Not `exec`: the shell's own child must get the signal too (the command's group).
    let args = gate(
        "bob",
        "PAY-1",
        &[],
        "echo started >&2; sleep 30; echo still here",
    );
    let mut child = spawn(&site, &args);
    stderr_until(&mut child, "started");
    // While it runs, its locks say when its next sign of life is due (three heartbeats on).
    let deadline = Instant::now() + Duration::from_secs(10);
    let locks = loop {
        let locks = site.json(&["locks"]);
        if locks[0]["alive_until"].is_string() || Instant::now() > deadline {
            break locks;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let since: chrono::DateTime<chrono::Utc> = locks[0]["since"].as_str().unwrap().parse().unwrap();
    let until: chrono::DateTime<chrono::Utc> = locks[0]["alive_until"]
        .as_str()
        .unwrap_or_else(|| panic!("a sign of life is due: {locks}"))
        .parse()
        .unwrap();
    assert!(
        until > since && until - since <= chrono::Duration::seconds(5),
        "{locks}"
    );
    let pid = child.id() as i32;
    // SAFETY: a signal to the gate this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_for(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "128 + SIGTERM, as a shell says");
    let recorded = events(&site, "PAY-1");
    let (kind, data, _) = recorded.last().expect("events");
    assert_eq!(kind, "DeploymentRolledBack");
    let reason = data["reason"].as_str().expect("a reason");
    assert!(reason.contains("job cancelled (SIGTERM)"), "{reason}");
    assert!(reason.contains("killed by signal 15"), "{reason}");
    assert!(
        !reason.contains("sleep"),
        "the reason names the program, not its arguments: {reason}"
    );
}

#[test]
fn a_release_behind_a_held_lock_waits_then_starts_when_it_frees() {
    let site = Site::new();
    ready(&site, "PAY-1", "bob");
    site.done("bob", "dep start PAY-1");
    // API-1 deploys api, which shares the backend-core group with billing.
    ready(&site, "API-1", "carol");
    let before = ledger_length(&site);
    let args = gate("carol", "API-1", &[], "echo api deployed");
    let mut child = spawn(&site, &args);
    let said = stderr_until(&mut child, "waiting");
    let line = said.last().expect("a line");
    assert!(
        line.contains("backend-core") && line.contains("PAY-1"),
        "says what it waits for: {line}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ledger_length(&site),
        before,
        "waiting records nothing (no refused starts)"
    );
    site.done("bob", "dep finish PAY-1");
    let status = wait_for(child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let history = site.json(&["history"]);
    let revision = |kind: &str, ticket: &str| {
        history
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_type"] == kind && e["ticket"] == ticket)
            .and_then(|e| e["revision"].as_u64())
            .unwrap_or_else(|| panic!("{kind} of {ticket}"))
    };
    assert!(revision("DeploymentStarted", "API-1") > revision("DeploymentFinished", "PAY-1"));
    assert!(revision("DeploymentFinished", "API-1") > revision("DeploymentStarted", "API-1"));
}

#[test]
fn no_wait_fails_at_once_and_records_nothing() {
    let site = Site::new();
    ready(&site, "PAY-1", "bob");
    site.done("bob", "dep start PAY-1");
    ready(&site, "API-1", "carol");
    let before = ledger_length(&site);
    let args = gate("carol", "API-1", &["--no-wait"], "echo should not run");
    let output = site
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .expect("run the gate");
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "the command did not run");
    assert!(
        stderr(&output).contains("backend-core"),
        "{}",
        stderr(&output)
    );
    assert_eq!(ledger_length(&site), before);
    // A ticket with no request is refused at once, with what to do.
    let args = gate("carol", "API-9", &[], "true");
    let output = site
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .expect("run the gate");
    assert_eq!(output.status.code(), Some(77));
    assert!(
        stderr(&output).contains("no open request"),
        "{}",
        stderr(&output)
    );
}

const PIPELINE_TOKEN: &str = "ci-secret-token";

/// A serve whose pipeline token acts as `ci-deployer`, an admin.
async fn serve_with_pipeline() -> TestApp {
    TestApp::spawn_with(
        |_| {},
        |config| {
            support::read_api::configure(config);
            config.http.pipeline_tokens = vec![PipelineToken {
                hash: TokenHash::of(PIPELINE_TOKEN),
                actor: u("ci-deployer"),
                roles: vec![PipelineRole::Admin],
            }];
        },
    )
    .await
}

async fn post_command(
    app: &TestApp,
    token: Option<&str>,
    key: Option<&str>,
    text: &str,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/api/v1/commands", app.base))
        .json(&json!({ "text": text }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_write_api_records_once_per_idempotency_key_and_nothing_without_a_token() {
    let app = serve_with_pipeline().await;
    let bot = |who: &str, text: &str| {
        let bot = app.app.bot.clone();
        let (who, text) = (who.to_string(), text.to_string());
        async move {
            bot.handle(
                support::fixtures::actor(&who, dobrobot::envelope::Source::Cli),
                &text,
                None,
            )
            .await
        }
    };
    bot("bob", "dobro #PAY-1 https://wiki/x notes no_need_admin").await;
    bot("alice", "accept PAY-1").await;
    let before = app.ledger_events().await.len();

    for token in [None, Some("wrong-token")] {
        let (status, problem) = post_command(&app, token, Some("k-1"), "dep start PAY-1").await;
        assert_eq!(status, 401, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("pipeline token")
        );
    }
    assert_eq!(app.ledger_events().await.len(), before, "nothing recorded");

    let (status, reply) = post_command(
        &app,
        Some(PIPELINE_TOKEN),
        Some("job-7:start"),
        "dep start PAY-1",
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "accepted");
    assert_eq!(reply["events"], json!(["DeploymentStarted"]));
    assert_eq!(reply["status"], "deploying");
    // The job lost the answer and asks again with the same key.
    let (status, again) = post_command(
        &app,
        Some(PIPELINE_TOKEN),
        Some("job-7:start"),
        "dep start PAY-1",
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["outcome"], "already_recorded");
    assert_eq!(again["status"], "deploying", "it learns that it started");
    let events = app.ledger_events().await;
    assert_eq!(events.len(), before + 1, "{events:?}");
    // Recorded as the token's actor, from http.
    let raw = app
        .app
        .store
        .read(
            &app.app.stream,
            dobrobot::store::Direction::Backwards,
            dobrobot::store::ReadFrom::End,
            1,
        )
        .await
        .unwrap();
    let last = dobrobot::envelope::decode(&raw[0]).unwrap();
    assert_eq!(last.metadata.actor.id, u("ci-deployer"));
    assert_eq!(last.metadata.actor.source, dobrobot::envelope::Source::Http);
    assert_eq!(last.metadata.command, "dep start PAY-1");

    // A refusal is recorded and answered 409; a command not understood records nothing.
    let (status, refused) = post_command(
        &app,
        Some(PIPELINE_TOKEN),
        Some("job-7:start-2"),
        "dep start PAY-1",
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["refusal"]["kind"], "already_deploying");
    let (status, _) = post_command(&app, Some(PIPELINE_TOKEN), None, "dep sttart PAY-1").await;
    assert_eq!(status, 400);
    assert_eq!(app.ledger_events().await.len(), before + 2);
    // Acting as someone else than the token's actor is forbidden.
    let response = app
        .http
        .post(format!("{}/api/v1/commands", app.base))
        .bearer_auth(PIPELINE_TOKEN)
        .json(&json!({ "text": "dep finish PAY-1", "as": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.ledger_events().await.len(), before + 2);
}

#[tokio::test]
async fn the_gate_deploys_through_a_serve_with_a_pipeline_token() {
    let app = serve_with_pipeline().await;
    let answer = app
        .app
        .bot
        .handle(
            support::fixtures::actor("bob", dobrobot::envelope::Source::Cli),
            "dobro #PAY-1 https://wiki/x notes no_need_admin",
            None,
        )
        .await;
    assert_eq!(answer.kind(), dobrobot::answer::ReplyKind::Done);
    app.app
        .bot
        .handle(
            support::fixtures::actor("alice", dobrobot::envelope::Source::Cli),
            "accept PAY-1",
            None,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let run = |token: &str| {
        let mut cmd = support::site::bare_process(dir.path());
        cmd.args(["--server", &app.base, "deploy", "PAY-1"])
            .args(QUICK)
            .args(["--", "sh", "-c", "echo remote deploy; exit 0"])
            .env("DOBROBOT_PIPELINE_TOKEN", token);
        cmd
    };
    let output = tokio::task::spawn_blocking({
        let mut cmd = run("wrong-token");
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(77), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let output = tokio::task::spawn_blocking({
        let mut cmd = run(PIPELINE_TOKEN);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "remote deploy\n");
    let events = app.ledger_events().await;
    assert!(
        events
            .last()
            .is_some_and(|e| e.starts_with("DeploymentFinished by ci-deployer")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("DeploymentAlive by ci-deployer")),
        "{events:?}"
    );
}

#[test]
fn a_cancelled_job_fails_even_when_its_command_exits_0_on_the_signal() {
    let site = Site::new();
    ready(&site, "PAY-1", "bob");
    let args = gate(
        "bob",
        "PAY-1",
        &[],
        "trap 'echo caught >&2; exit 0' TERM; echo started >&2; sleep 30 & wait",
    );
    let mut child = spawn(&site, &args);
    stderr_until(&mut child, "started");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: a signal to the gate this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_for(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143));
    let recorded = events(&site, "PAY-1");
    let (kind, data, _) = recorded.last().expect("events");
    assert_eq!(kind, "DeploymentRolledBack");
    let reason = data["reason"].as_str().expect("a reason");
    assert!(reason.contains("exited with status 0"), "{reason}");
}
