//! A `dobrobot chat` process killed with SIGKILL in the middle of a stream of commands loses
//! nothing it acknowledged, and the ledger it leaves behind verifies, with every snapshot of the
//! writer's state and the persisted read models its follower kept equal to the fold. Three kills in a row on one file, each process recovering
//! the file the previous one left, from the last snapshot.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use dobrobot::domain::{Event, TicketKey};
use dobrobot::envelope;
use dobrobot::ledger::stream_name;
use dobrobot::store::{self, Direction, ReadFrom};

const BIN: &str = env!("CARGO_BIN_EXE_dobrobot");
/// How many commands each process is offered: far more than it gets through before the kill.
const OFFERED: u64 = 20_000;
/// How long to wait for the next acknowledgement before calling the process stuck.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// A `dobrobot` command on the store at `db`, with no config file or environment leaking in.
fn dobrobot(dir: &Path, db: &Path) -> Command {
    let mut command = Command::new(BIN);
    for name in dobrobot::config::ENV_OVERRIDES {
        command.env_remove(name);
    }
    command
        .env_remove("DOBROBOT_CONFIG")
        .env("DOBROBOT_STORE", format!("sqlite://{}", db.display()))
        .env("DOBROBOT_APPROVERS", "alice")
        .env("DOBROBOT_ADMINS", "oleg")
        // Snapshots are written (and killed in the middle of) too, and each round starts from
        // the last one the previous process left.
        .env("DOBROBOT_SNAPSHOT_EVERY", "50")
        .env("RUST_LOG", "warn")
        .current_dir(dir);
    command
}

fn request(n: u64) -> String {
    format!("dobro #PAY-{n} https://wiki/x c services=billing\n")
}

/// Feeds `dobro` commands for tickets `first..` to a chat process, kills it `delay` after
/// `kill_after` of them are acknowledged (so at a different point of an append each time), and
/// returns how many were acknowledged.
fn run_and_kill(dir: &Path, db: &Path, first: u64, kill_after: u64, delay: Duration) -> u64 {
    let stderr = std::fs::File::create(dir.join(format!("stderr-{first}.log"))).expect("log file");
    let mut child: Child = dobrobot(dir, db)
        .args(["chat", "--as", "bob", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start dobrobot chat");

    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = thread::spawn(move || {
        for n in first..first + OFFERED {
            // The pipe breaks when the process is killed: stop there.
            if stdin.write_all(request(n).as_bytes()).is_err() {
                return;
            }
        }
    });

    let stdout = child.stdout.take().expect("piped stdout");
    let (acks, acked) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        for n in first.. {
            let mut line = String::new();
            // A line cut short by the kill was never a whole reply: not acknowledged.
            match stdout.read_line(&mut line) {
                Ok(_) if line.ends_with('\n') => {}
                _ => return,
            }
            let reply: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("reply is not a JSON line ({e}): {line}"));
            assert_eq!(reply["kind"], "done", "PAY-{n}: {line}");
            let text = reply["text"].as_str().expect("a reply text");
            assert!(
                text.contains(&format!("PAY-{n} ")),
                "reply out of order for PAY-{n}: {line}"
            );
            if acks.send(n).is_err() {
                return;
            }
        }
    });

    let mut count = 0;
    while count < kill_after {
        match acked.recv_timeout(ACK_TIMEOUT) {
            Ok(n) => {
                assert_eq!(n, first + count);
                count += 1;
            }
            Err(e) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join(format!("stderr-{first}.log")));
                panic!("no acknowledgement after {count} ({e}); stderr: {log:?}");
            }
        }
    }
    thread::sleep(delay);
    // SIGKILL, while the writer still has thousands of commands queued up in the pipe.
    child.kill().expect("kill the chat process");
    let status = child.wait().expect("reap the chat process");
    assert!(
        !status.success(),
        "the process was killed, not finished: {status}"
    );
    writer.join().expect("the writer thread");
    reader
        .join()
        .expect("the reader thread: every reply was a recorded request");
    // Replies read after the count was reached were acknowledged too.
    count + acked.try_iter().count() as u64
}

/// The tickets of every `ReleaseRequested` in the ledger, in revision order.
fn requested_tickets(db: &Path) -> Vec<TicketKey> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = store::open(&format!("sqlite://{}", db.display()))
            .await
            .expect("open the store the killed process left");
        let recorded = store
            .read(
                &stream_name("prod"),
                Direction::Forwards,
                ReadFrom::Start,
                usize::MAX,
            )
            .await
            .expect("read the ledger");
        recorded
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                assert_eq!(r.revision, i as u64, "contiguous revisions");
                match envelope::decode(r).expect("every event decodes").event {
                    Event::ReleaseRequested { ticket, .. } => Some(ticket),
                    // The policy the process recorded when it started.
                    Event::PolicyChanged { .. } if i == 0 => None,
                    other => panic!("only requests were sent, found {other:?}"),
                }
            })
            .collect()
    })
}

fn verify(dir: &Path, db: &Path) -> Output {
    dobrobot(dir, db)
        .arg("verify")
        .output()
        .expect("run dobrobot verify")
}

fn ticket(n: u64) -> TicketKey {
    TicketKey::parse(&format!("PAY-{n}")).expect("a valid ticket key")
}

#[test]
fn every_acknowledged_command_survives_sigkill_and_the_ledger_verifies() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db: PathBuf = dir.path().join("ledger.db");
    let mut next = 1;

    for (round, kill_after, delay_us) in [(1, 150, 0), (2, 313, 1_700), (3, 227, 3_100)] {
        let delay = Duration::from_micros(delay_us);
        let acknowledged = run_and_kill(dir.path(), &db, next, kill_after, delay);
        assert!(acknowledged >= kill_after);

        let stored = requested_tickets(&db);
        let stored_set: BTreeSet<&TicketKey> = stored.iter().collect();
        for n in next..next + acknowledged {
            assert!(
                stored_set.contains(&ticket(n)),
                "round {round}: PAY-{n} was acknowledged but is not in the ledger"
            );
        }
        // One process at a time, in order: the ledger is exactly PAY-1..PAY-m, no holes, no
        // repeats, whatever the last process recorded without getting to say so.
        let expected: Vec<TicketKey> = (1..=stored.len() as u64).map(ticket).collect();
        assert_eq!(stored, expected, "round {round}");

        let verified = verify(dir.path(), &db);
        let stdout = String::from_utf8_lossy(&verified.stdout);
        assert!(
            verified.status.success(),
            "round {round}: verify failed: {stdout} {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        assert!(
            // The requests, and the policy the first process recorded when it started.
            stdout.starts_with(&format!("ok: {} events", stored.len() + 1)),
            "round {round}: {stdout}"
        );
        assert!(
            !stdout.contains(" 0 snapshots"),
            "round {round}: snapshots were written: {stdout}"
        );
        assert!(
            stdout.contains("ok: the read models in") && stdout.contains("equal a fresh fold"),
            "round {round}: the read models were checked: {stdout}"
        );
        next = stored.len() as u64 + 1;
    }
}
