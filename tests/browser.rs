//! The pages in a real browser: headless Chromium (Debian's `chromium`), driven by Playwright
//! from PyPI (`tests/browser/pages.py`), against the app as `serve` builds it on the fixed
//! two-week ledger. This test works out what the pages must show from the API and the CLI and
//! hands it to the script: the bars where the ledger says and in their outcome's colour, a
//! ticket's story, every bar reached by keyboard, an incident permalink highlighting exactly
//! what `suspects --at` lists, a command recorded through the CLI appearing while the page is
//! open, and no console errors. Screenshots go to `target/screenshots/`.

mod support;

use serde_json::{Value, json};

use dobrobot::config::{Secret, TrackerConfig};
use support::jira::{API_TOKEN, EMAIL, FakeJira, Flavour, IssueSpec, Reply};
use support::read_api::{Api, CLI_CONFIG, fixed_ledger_with};

/// The interpreter with Playwright, and Chromium; `None` (skipped) when this machine has not
/// got them, which fails on CI.
fn browser() -> Option<(String, String)> {
    let python = std::env::var("DOBROBOT_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    let chromium = std::env::var("DOBROBOT_CHROMIUM")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .find(|c| std::path::Path::new(c).exists())
                .map(str::to_string)
        });
    match (python, chromium) {
        (Some(python), Some(chromium)) => Some((python, chromium)),
        (python, chromium) => {
            let missing = if python.is_none() {
                "DOBROBOT_PYTHON is not set (scripts/test sets it up)"
            } else {
                "Chromium is not installed (apt-get install chromium)"
            };
            assert!(std::env::var_os("CI").is_none(), "{missing}");
            eprintln!("skipped: {missing}");
            let _ = chromium;
            None
        }
    }
}

/// The fields of a release record the script checks the bars against.
fn bar_facts(d: &Value) -> Value {
    json!({
        "ticket": d["ticket"], "services": d["services"], "requested_at": d["requested_at"],
        "started_at": d["started_at"], "ended_at": d["ended_at"], "outcome": d["outcome"],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_show_the_ledger_in_a_browser() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    // Every request of the ledger is looked up in a fake Jira, so the story shows what the
    // tracker said of its ticket.
    let jira = FakeJira::start(Flavour::Cloud).await;
    for ticket in [
        "PAY-1", "PAY-2", "PAY-3", "PAY-4", "API-7", "API-8", "API-9", "PAY-77",
    ] {
        let summary = format!("{ticket}: rate-limit the endpoint");
        jira.script(ticket, [Reply::Found(IssueSpec::ready(&summary))]);
    }
    let tracker = TrackerConfig {
        base_url: jira.url(),
        email: Some(EMAIL.into()),
        api_token: Some(Secret(API_TOKEN.into())),
        ..TrackerConfig::default()
    };
    let jira_url = jira.url();
    let api: Api = fixed_ledger_with(move |config| config.tracker = Some(tracker)).await;
    let (since, until) = ("2026-03-02T08:30:00Z", "2026-03-02T12:30:00Z");
    let deployments = api
        .items(&format!("/api/v1/deployments?since={since}&until={until}"))
        .await;
    assert_eq!(deployments.len(), 4, "PAY-1, API-7, PAY-3 and API-8");
    let refused = api
        .items(&format!(
            "/api/v1/history?since={since}&until={until}&type=CommandRefused"
        ))
        .await;
    assert_eq!(refused.len(), 1, "API-7's start, held by the group lock");
    let story: Vec<u64> = api
        .items("/api/v1/history?ticket=API-7")
        .await
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    // What `suspects --at` lists, most recent first, and the locks then.
    let at = "2026-03-02T10:20Z";
    let suspects: Vec<Value> = api
        .cli(&["suspects", "--at", at, "--window", "2h"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ticket"].clone())
        .collect();
    assert_eq!(suspects, ["API-7", "PAY-1"]);
    let locks_then: Vec<Value> = api.cli(&["replay", "--at", at])["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ticket"].clone())
        .collect();
    assert!(!locks_then.is_empty(), "API-7 held its locks then");

    // The rules recorded in the range (when the app started), drawn as lines across the lanes.
    let rule_changes: Vec<Value> = api
        .items(&format!(
            "/api/v1/history?since={since}&until={until}&type=PolicyChanged"
        ))
        .await
        .iter()
        .map(|e| e["recorded_at"].clone())
        .collect();
    assert_eq!(rule_changes.len(), 1, "the policy recorded at the start");
    // What-if under rules where carol approves instead of alice: what the CLI reports, the page
    // must mark and list.
    let proposed = CLI_CONFIG.replace(r#"approvers = ["alice"]"#, r#"approvers = ["carol"]"#);
    assert_ne!(proposed, CLI_CONFIG);
    let proposed_file = api.app.dir.path().join("proposed.toml");
    std::fs::write(&proposed_file, &proposed).unwrap();
    let what_if = api.cli(&[
        "what-if",
        "--policy",
        proposed_file.to_str().unwrap(),
        "--since",
        since,
        "--until",
        until,
    ]);
    let what_if_kinds: Vec<Value> = what_if["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].clone())
        .collect();
    assert!(!what_if_kinds.is_empty(), "{what_if}");

    // The CLI's `chat` decides by the recorded rules, which check the tracker: it asks Jira too.
    let config = api.app.dir.path().join("cli.toml");
    std::fs::write(&config, format!("{CLI_CONFIG}[tracker]\nkind = \"jira\"\n")).unwrap();
    let screenshots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    let plan = json!({
        "base": api.app.base,
        "chromium": chromium,
        "range": [since, until],
        "deployments": deployments.iter().map(bar_facts).collect::<Vec<_>>(),
        "refused": refused.len(),
        "rule_changes": rule_changes,
        "what_if": {"policy": proposed, "since": since, "until": until, "kinds": what_if_kinds},
        "story": {
            "ticket": "API-7",
            "revisions": story,
            "says": ["alice", "errors", "https://wiki/7", "carol",
                     "API-7: rate-limit the endpoint", "Ready for release"],
        },
        "incident": {"at": at, "window": "2h", "suspects": suspects, "locked_by": locks_then},
        "screenshots": screenshots,
        "cli": {
            "command": [
                env!("CARGO_BIN_EXE_dobrobot"), "--store", api.app.config.store,
                "--config", config,
            ],
            "env": {
                "PATH": std::env::var("PATH").unwrap_or_default(),
                "DOBROBOT_MODELS": api.app.dir.path().join("cli-models.db"),
                "DOBROBOT_TRACKER_BASE_URL": jira_url,
                "JIRA_EMAIL": EMAIL,
                "JIRA_API_TOKEN": API_TOKEN,
            },
            "ticket": "PAY-77",
        },
    });
    let plan_file = api.app.dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/pages.py");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&plan_file)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("the browser test finishes within four minutes")
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the pages in Chromium ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(screenshots.join("timeline.png").exists());
    assert!(screenshots.join("report.png").exists());
}
