//! The policy is recorded in the ledger: a process that starts (or reloads on SIGHUP) with rules
//! that differ from the last recorded ones records `PolicyChanged`, with the whole policy, the
//! change in words and the config file's hash, and the commands after it are decided by it.
//! `policy show --at` and `policy diff` read it back. Through the binary, as people run it.

use std::fs::File;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

mod support;

use support::serve::{Serve, free_port, healthy};
use support::site::{Site, stderr, stdout};

/// The PolicyChanged entries of the ledger, oldest first.
fn policy_changes(site: &Site) -> Vec<Value> {
    let history = site.json(&["history", "--type", "PolicyChanged"]);
    let mut entries = history.as_array().expect("a list").clone();
    entries.sort_by_key(|e| e["revision"].as_u64());
    entries
}

fn changes(entry: &Value) -> Vec<String> {
    entry["event"]["data"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c.as_str().expect("a line").to_string())
        .collect()
}

fn sha256_of(path: &std::path::Path) -> String {
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).expect("the config"),
    ))
}

/// Starts `serve` on the site on a free port and waits for it; its stderr goes to `log`.
async fn serve(site: &Site, log: &str) -> Serve {
    let port = free_port();
    let child = support::serve::dobrobot(site.path())
        .arg("serve")
        .env("DOBROBOT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(File::create(site.path().join(log)).expect("a log file"))
        .spawn()
        .expect("start serve");
    let serve = Serve(child);
    healthy(&reqwest::Client::new(), port).await;
    serve
}

fn policy_show(site: &Site, at: Option<&str>) -> Value {
    let mut args = vec!["policy", "show", "--json"];
    if let Some(at) = at {
        args.extend(["--at", at]);
    }
    let output = site.cmd(&args).output().expect("run dobrobot");
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("JSON")
}

fn people(policy: &Value, role: &str) -> Vec<String> {
    policy[role]
        .as_array()
        .expect("people")
        .iter()
        .map(|p| p.as_str().expect("an id").to_string())
        .collect()
}

#[tokio::test]
async fn a_config_edited_between_two_serves_is_recorded_with_its_diff_and_decides_from_then_on() {
    let site = Site::new();
    let first = serve(&site, "serve-1.log").await;
    drop(first);
    let recorded = policy_changes(&site);
    assert_eq!(recorded.len(), 1, "the first start records the policy");
    assert_eq!(changes(&recorded[0]), ["the first recorded policy"]);
    let data = &recorded[0]["event"]["data"];
    assert_eq!(data["cause"], "start");
    assert_eq!(data["config_hash"], sha256_of(&site.config));
    assert_eq!(recorded[0]["source"], "system");
    assert_eq!(
        people(&data["policy"], "approvers"),
        ["U01APPROVER", "alice"]
    );

    // Commands by processes with the same config record no policy again.
    site.done("bob", "dobro #PAY-1 https://wiki/x first");
    site.done("alice", "accept PAY-1");
    site.done("bob", "dobro #PAY-2 https://wiki/x second");
    assert_eq!(policy_changes(&site).len(), 1);
    let before = site.json(&["history", "--ticket", "PAY-1"]);
    let accepted_at = before
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "ReleaseApproved")
        .expect("PAY-1 accepted")["recorded_at"]
        .as_str()
        .unwrap()
        .to_string();

    // alice hands approving over to carol; API now deploys a gateway too.
    let text = std::fs::read_to_string(&site.config).unwrap();
    let edited = text
        .replace(
            r#"approvers = ["alice", "U01APPROVER"]"#,
            r#"approvers = ["carol", "U01APPROVER"]"#,
        )
        .replace(r#"API = ["api"]"#, r#"API = ["api", "gateway"]"#);
    assert_ne!(edited, text);
    std::fs::write(&site.config, &edited).unwrap();
    let second = serve(&site, "serve-2.log").await;
    drop(second);

    let recorded = policy_changes(&site);
    assert_eq!(recorded.len(), 2, "the edited config is recorded once");
    assert_eq!(
        changes(&recorded[1]),
        [
            "approvers: added carol; removed alice",
            "approver entries in the config: added carol; removed alice",
            "services of API: api, gateway (was api)",
        ]
    );
    assert_eq!(
        recorded[1]["event"]["data"]["config_hash"],
        sha256_of(&site.config)
    );

    // From then on the recorded rules decide: alice may no longer approve, carol may.
    let refused = site.refused("alice", "accept PAY-2");
    assert!(refused.contains("approver"), "{refused}");
    site.done("carol", "accept PAY-2");

    // The policy as it held then, and now, and the difference.
    let then = policy_show(&site, Some(&accepted_at));
    assert_eq!(people(&then, "approvers"), ["U01APPROVER", "alice"]);
    let now = policy_show(&site, None);
    assert_eq!(people(&now, "approvers"), ["U01APPROVER", "carol"]);
    let text = site
        .cmd(&["policy", "show", "--at", &accepted_at])
        .output()
        .unwrap();
    let text = stdout(&text);
    assert!(text.contains("Approvers: U01APPROVER, alice"), "{text}");
    assert!(text.contains("backend-core: api, billing"), "{text}");
    let diff = site
        .cmd(&["policy", "diff", &accepted_at, "now"])
        .output()
        .unwrap();
    assert!(diff.status.success(), "{}", stderr(&diff));
    assert_eq!(
        stdout(&diff).lines().collect::<Vec<_>>(),
        changes(&recorded[1])
    );
    let same = site
        .cmd(&["policy", "diff", &accepted_at, &accepted_at])
        .output()
        .unwrap();
    assert!(
        stdout(&same).starts_with("No change in the rules"),
        "{}",
        stdout(&same)
    );

    // Before the first start there was no policy.
    let none = site
        .cmd(&["policy", "show", "--at", "2000-01-01T00:00Z"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("records no policy"),
        "{}",
        stderr(&none)
    );

    // A one-off process with another config (here none: nobody in any role) decides by the
    // recorded rules, says so, and records none of its own.
    let store = format!("sqlite://{}", site.path().join("ledger.db").display());
    let other = support::site::bare(site.path())
        .args(["--store", &store, "chat", "--as", "carol", "queue"])
        .output()
        .unwrap();
    assert!(other.status.success(), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("differ from the ones recorded in the ledger"),
        "{}",
        stderr(&other)
    );
    assert_eq!(policy_changes(&site).len(), 2);

    let verify = site.cmd(&["verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
}

/// How many PolicyChanged events the ledger holds, read without the (maybe invalid) config.
fn policy_changes_raw(site: &Site) -> usize {
    let store = format!("sqlite://{}", site.path().join("ledger.db").display());
    let output = support::site::bare(site.path())
        .args([
            "--store",
            &store,
            "history",
            "--type",
            "PolicyChanged",
            "--format",
            "json",
        ])
        .output()
        .expect("run dobrobot");
    assert!(output.status.success(), "{}", stderr(&output));
    let entries: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    entries.as_array().expect("a list").len()
}

/// Waits until the ledger holds `n` PolicyChanged events.
async fn until_recorded(site: &Site, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let recorded = policy_changes(site);
        if recorded.len() >= n || Instant::now() > deadline {
            return recorded;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hangup(serve: &Serve) {
    let pid = i32::try_from(serve.id()).expect("a pid");
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

#[tokio::test]
async fn sighup_reloads_the_policy_and_an_invalid_file_leaves_the_policy_in_force() {
    let site = Site::new();
    let running = serve(&site, "serve.log").await;
    assert_eq!(until_recorded(&site, 1).await.len(), 1);
    let text = std::fs::read_to_string(&site.config).unwrap();

    let with_dana = text.replace(r#"admins = ["oleg"]"#, r#"admins = ["oleg", "dana"]"#);
    std::fs::write(&site.config, &with_dana).unwrap();
    hangup(&running);
    let recorded = until_recorded(&site, 2).await;
    assert_eq!(recorded.len(), 2, "the reload is recorded");
    assert_eq!(recorded[1]["event"]["data"]["cause"], "reload");
    assert_eq!(
        changes(&recorded[1]),
        [
            "admins: added dana",
            "admin entries in the config: added dana"
        ]
    );

    // A file that does not parse: refused, said in the log, and nothing recorded.
    let invalid = with_dana.replace(
        r#"ticket_pattern = "^[A-Z][A-Z0-9]+-[0-9]+$""#,
        r#"ticket_pattern = "([""#,
    );
    assert_ne!(invalid, with_dana);
    std::fs::write(&site.config, invalid).unwrap();
    hangup(&running);
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = std::fs::read_to_string(site.path().join("serve.log")).unwrap();
        if log.contains("config reload refused") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(log.contains("config reload refused"), "{log}");
    assert!(log.contains("not a valid regular expression"), "{log}");
    assert_eq!(
        policy_changes_raw(&site),
        2,
        "nothing recorded for the refused file"
    );

    // The next good file is recorded against the policy in force (dana is still an admin),
    // not against the refused file.
    std::fs::write(&site.config, &text).unwrap();
    hangup(&running);
    let recorded = until_recorded(&site, 3).await;
    assert_eq!(recorded.len(), 3);
    assert_eq!(
        changes(&recorded[2]),
        [
            "admins: removed dana",
            "admin entries in the config: removed dana"
        ]
    );
    drop(running);
}

#[test]
fn what_if_replays_a_range_under_a_proposed_config_and_writes_nothing() {
    let site = Site::new();
    site.done("bob", "dobro #PAY-1 https://wiki/x rounding no_need_admin");
    site.done("alice", "accept PAY-1");
    site.done("bob", "dep start PAY-1");
    site.done("bob", "dep finish PAY-1");
    site.done("dana", "dobro #API-1 https://wiki/y endpoint no_need_admin");
    site.refused("carol", "accept API-1");
    site.done("U01APPROVER", "accept API-1");
    let events = site.json(&["history"]).as_array().unwrap().len();

    // The same rules: nothing would have gone otherwise.
    let same = site
        .cmd(&[
            "what-if",
            "--policy",
            site.config.to_str().unwrap(),
            "--since",
            "1h",
        ])
        .output()
        .unwrap();
    assert!(same.status.success(), "{}", stderr(&same));
    assert!(
        stdout(&same).contains("7 recorded commands from")
            && stdout(&same).contains("no difference"),
        "{}",
        stdout(&same)
    );

    // alice no longer approves, carol does.
    let proposed = site.path().join("proposed.toml");
    let text = std::fs::read_to_string(&site.config).unwrap().replace(
        r#"approvers = ["alice", "U01APPROVER"]"#,
        r#"approvers = ["carol", "U01APPROVER"]"#,
    );
    std::fs::write(&proposed, text).unwrap();
    let output = site
        .cmd(&[
            "what-if",
            "--policy",
            proposed.to_str().unwrap(),
            "--since",
            "1h",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let answer: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(answer["commands"], 7);
    let differences: Vec<(String, String)> = answer["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["ticket"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        differences,
        [
            ("approval_not_counted", "PAY-1"),
            ("start_refused", "PAY-1"),
            ("allowed", "API-1"),
            ("refused", "API-1"),
        ]
        .map(|(k, t)| (k.to_string(), t.to_string()))
    );
    assert_eq!(answer["differences"][1]["still_waiting"], true);
    assert_eq!(answer["differences"][1]["refusal"]["kind"], "not_accepted");

    let csv = site
        .cmd(&[
            "what-if",
            "--policy",
            proposed.to_str().unwrap(),
            "--since",
            "1h",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    let csv = stdout(&csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "at,ticket,difference,detail");
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[1]
            .contains("PAY-1,approval_not_counted,the approval by alice would not have counted"),
        "{csv}"
    );

    // A what-if records nothing; verify decides every command again by the recorded rules.
    assert_eq!(site.json(&["history"]).as_array().unwrap().len(), events);
    let verify = site.cmd(&["verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains(
            "ok: 7 commands decided again by the policy recorded then give the events recorded"
        ),
        "{}",
        stdout(&verify)
    );

    // A proposal that is not a valid config is refused, naming the problem.
    std::fs::write(&proposed, "ticket_pattern = \"([\"").unwrap();
    let bad = site
        .cmd(&["what-if", "--policy", proposed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("not a valid regular expression"),
        "{}",
        stderr(&bad)
    );
}
