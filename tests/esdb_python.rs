//! The EventStoreDB double checked by a client we did not write: `tests/python/check_double.py`
//! runs the PyPI `kurrentdbclient` against a running double. It appends one event
//! (`Streams.Append`) and several (`Streams.BatchAppend`), reads them back, checks the wrong
//! expected version answer and a catch-up subscription, and reads events that dobrobot wrote
//! into the double beforehand.
//!
//! The interpreter comes from `DOBROBOT_PYTHON` (CI: `python3 -m venv .venv &&
//! .venv/bin/pip install kurrentdbclient`, then `DOBROBOT_PYTHON=.venv/bin/python`). Without it
//! the test fails on CI (`CI` set) and is skipped with a message elsewhere.

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use dobrobot::domain::{Input, RoleEntry, UserId, parse};
use dobrobot::envelope::{Actor, Source};
use dobrobot::ledger::{Ledger, Options, Submission};
use dobrobot::store::{Direction, ReadFrom};
use esdb_double::Double;
use uuid::Uuid;

#[tokio::test]
async fn an_independent_python_client_agrees_with_the_double() {
    let Some(python) = python_interpreter() else {
        return;
    };
    let double = Double::start().await;
    let stream = dobrobot::ledger::stream_name("python-check");
    let written = write_events_as_dobrobot(&double.url(), &stream).await;
    let expected: Vec<_> = written
        .iter()
        .map(|(id, event_type)| serde_json::json!({ "id": id.to_string(), "type": event_type }))
        .collect();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_double.py");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(double.url())
        .arg(&stream)
        .arg(serde_json::to_string(&expected).expect("JSON"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the Python check finishes within two minutes")
        .unwrap_or_else(|e| panic!("run {python} {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the Python check failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// The Python to run the check with, or `None` (skip) when it is not configured outside CI.
fn python_interpreter() -> Option<String> {
    match std::env::var("DOBROBOT_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var_os("CI").is_some() => panic!(
            "DOBROBOT_PYTHON is not set: CI must provide a Python with kurrentdbclient \
             (python3 -m venv .venv && .venv/bin/pip install kurrentdbclient)"
        ),
        _ => {
            eprintln!(
                "skipped: set DOBROBOT_PYTHON to a Python with kurrentdbclient installed \
                 (python3 -m venv .venv && .venv/bin/pip install kurrentdbclient) to check \
                 the EventStoreDB double with an independent client"
            );
            None
        }
    }
}

/// Records a short release through dobrobot's own ledger on its EventStoreDB backend, as the
/// service does: a request, a refused accept (four eyes), an approval, an admin, a start.
/// Returns the ids and types of what was stored, in order.
async fn write_events_as_dobrobot(url: &str, stream: &str) -> Vec<(Uuid, String)> {
    let store = dobrobot::store::open(url)
        .await
        .expect("the EventStoreDB backend");
    let policy = dobrobot::config::Config {
        roles: dobrobot::config::Roles {
            approvers: vec![RoleEntry::parse("U02BOB").unwrap()],
            admins: vec![RoleEntry::parse("U03OLEG").unwrap()],
        },
        services: [("PAY".to_string(), vec!["payments".to_string()])].into(),
        ..Default::default()
    }
    .policy()
    .expect("a valid policy");
    let ledger = Ledger::open(
        store.clone(),
        stream.to_string(),
        Arc::new(policy),
        Options::default(),
    )
    .await
    .expect("the ledger loads");
    let chat = [
        (
            "U01ALICE",
            "dobro #PAY-1 https://wiki.example.com/pay-1 payments change",
        ),
        ("U01ALICE", "accept PAY-1"),
        ("U02BOB", "accept PAY-1"),
        ("U03OLEG", "here PAY-1"),
        ("U01ALICE", "dep start PAY-1"),
    ];
    for (user, text) in chat {
        let Ok(Input::Command(command)) = parse(text) else {
            panic!("`{text}` is a command");
        };
        let id = UserId::parse(user).expect("a user id");
        let submission = Submission {
            command,
            actor: Actor {
                name: id.to_string(),
                id,
                source: Source::Slack,
            },
            text: text.to_string(),
            delivery: None,
            correlation_id: None,
        };
        ledger.submit(submission).await.expect("recorded");
    }
    dobrobot::verify::verify(&store, stream)
        .await
        .expect("the ledger verifies on the double");
    let stored = store
        .read(stream, Direction::Forwards, ReadFrom::Start, 100)
        .await
        .expect("read back");
    assert_eq!(
        stored.len(),
        chat.len(),
        "one event per command, refusals included"
    );
    stored.into_iter().map(|e| (e.id, e.event_type)).collect()
}
