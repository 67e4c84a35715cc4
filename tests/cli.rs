//! End to end through the binary: `chat` and its exit codes, every listing in its formats, time
//! travel (`replay`, `suspects`), `verify`, and the config (the issue's file as written, unknown
//! keys, environment overrides, no file at all). Each test runs on its own SQLite file in its own
//! temp dir, with no `DOBROBOT_*` variable inherited from the caller.

use chrono::{DateTime, Duration, Utc};
use predicates::prelude::*;
use serde_json::Value;

mod support;

use support::site::{ISSUE_CONFIG, Site, bare, bare_process, stderr, stdout};

const TRACKER: &str = "https://tracker.example.com/browse/";

impl Site {
    /// The revisions of a `history` listing.
    #[track_caller]
    fn history(&self, filters: &[&str]) -> Vec<u64> {
        let mut args = vec!["history"];
        args.extend(filters);
        let entries = self.json(&args);
        entries
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| e["revision"].as_u64().expect("a revision"))
            .collect()
    }

    /// When each event was recorded, by revision.
    fn recorded_at(&self) -> Vec<DateTime<Utc>> {
        let entries = self.json(&["history"]);
        entries
            .as_array()
            .expect("a list")
            .iter()
            .enumerate()
            .map(|(i, e)| {
                assert_eq!(e["revision"], i as u64, "contiguous revisions");
                e["recorded_at"]
                    .as_str()
                    .expect("a time")
                    .parse()
                    .expect("RFC 3339")
            })
            .collect()
    }

    /// A time strictly between the recording of two revisions.
    fn between(&self, before: usize, after: usize) -> String {
        let times = self.recorded_at();
        let (a, b) = (times[before], times[after]);
        assert!(
            a < b,
            "revisions {before} and {after} were recorded at distinct times"
        );
        rfc3339(a + (b - a) / 2)
    }

    /// The seed's release of PAY-1, with API-1 refused while PAY-1 holds the conflict group.
    /// Revisions: 0 the policy the first `chat` recorded, 1 request PAY-1, 2 accept, 3 here,
    /// 4 start, 5 request API-1, 6 accept API-1, 7 refused start of API-1, 8 finish PAY-1.
    fn seed(&self) {
        self.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding");
        self.done("alice", "accept PAY-1");
        self.done("oleg", "here PAY-1");
        self.done("bob", "dep start PAY-1");
        self.done(
            "carol",
            "dobro #API-1 https://wiki/y New endpoint no_need_admin",
        );
        self.done("alice", "accept API-1");
        self.refused("carol", "dep start API-1");
        self.done("bob", "dep finish PAY-1");
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A ticket reads as its key in sentences; its tracker link is a line of the request reply.
fn link(ticket: &str) -> String {
    ticket.to_string()
}

#[track_caller]
fn assert_contains(text: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(text.contains(fragment), "missing {fragment:?} in:\n{text}");
    }
}

// --- chat ------------------------------------------------------------------------------------

#[test]
fn the_seed_walkthrough_with_chat() {
    let site = Site::new();

    let reply = site.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding");
    assert_contains(
        &reply,
        &[
            &format!("bob asks to release {} (billing).", link("PAY-1")),
            &format!("Ticket: {TRACKER}PAY-1"),
            "> Fix billing rounding",
            "Release notes: https://wiki/x",
            "Waiting for approval by U01APPROVER or alice (needs an admin).",
        ],
    );

    let reply = site.refused("bob", "dep start PAY-1");
    assert_contains(&reply, &["PAY-1", "is not accepted yet", "`accept PAY-1`"]);

    let reply = site.done("alice", "accept PAY-1");
    assert_contains(
        &reply,
        &[
            &format!("alice accepted {}.", link("PAY-1")),
            "an admin (oleg) joins with `here PAY-1`",
        ],
    );

    let reply = site.refused("bob", "dep start PAY-1");
    assert_contains(&reply, &["needs an admin", "`here PAY-1`"]);

    let reply = site.done("oleg", "here PAY-1");
    assert_contains(
        &reply,
        &[
            &format!("Admin found: oleg joins {}.", link("PAY-1")),
            "Next: `dep start PAY-1`.",
        ],
    );

    let reply = site.done("bob", "dep start PAY-1");
    assert_contains(
        &reply,
        &[
            &format!("Deployment of {} started by bob on billing.", link("PAY-1")),
            "Conflict group locked: backend-core.",
            "`dep finish PAY-1`",
        ],
    );
    let started = site.recorded_at()[5];

    site.done(
        "carol",
        "dobro #API-1 https://wiki/y New endpoint no_need_admin",
    );
    site.done("alice", "accept API-1");
    // api is free, but it shares the conflict group with billing, which PAY-1 is deploying.
    let reply = site.refused("carol", "dep start API-1");
    let when = started.format("%Y-%m-%d %H:%M UTC").to_string();
    assert_eq!(
        reply.trim_end(),
        format!(
            "Conflict group backend-core is locked by the deployment of {}, started by bob at {when}.",
            link("PAY-1")
        )
    );

    let reply = site.done("bob", "dep finish PAY-1");
    assert_contains(
        &reply,
        &[&format!("Deployment of {} finished by bob.", link("PAY-1"))],
    );

    let reply = site.done("carol", "dep start API-1");
    assert_contains(&reply, &["Deployment of API-1", "started by carol on api."]);

    let output = site.cmd(&["verify"]).output().unwrap();
    assert!(output.status.success(), "{}", stdout(&output));
    // The policy the first `chat` recorded, then eleven commands.
    assert!(stdout(&output).starts_with("ok: 12 events in dobrobot-ledger-prod"));
}

#[test]
fn refusals_exit_1_and_name_the_rule() {
    let site = Site::new();
    site.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding");

    // bob is not an approver, nor is carol.
    assert_eq!(
        site.refused("bob", "accept PAY-1"),
        "Only an approver can do that.\n"
    );
    assert_eq!(
        site.refused("carol", "accept PAY-1"),
        "Only an approver can do that.\n"
    );

    // An approver who asked for the release cannot accept it: four eyes.
    site.done("alice", "dobro #PAY-2 https://wiki/z Refunds");
    let reply = site.refused("alice", "accept PAY-2");
    assert_contains(&reply, &["You requested PAY-2", "four eyes"]);
    site.done("U01APPROVER", "accept PAY-2");

    assert_contains(
        &site.refused("carol", "dep start PAY-1"),
        &["Only the requester or an admin can do that."],
    );
    assert_contains(
        &site.refused("bob", "dobro #PAY-1 https://wiki/x again"),
        &["PAY-1", "already has an open request (requested)."],
    );
    assert_contains(
        &site.refused("bob", "dep finish PAY-9"),
        &["There is no open request for PAY-9"],
    );

    // Every refusal is recorded: who tried what.
    let refused = site.json(&["history", "--type", "CommandRefused"]);
    let tried: Vec<(&str, &str)> = refused
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["command"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tried,
        [
            ("bob", "accept PAY-1"),
            ("carol", "accept PAY-1"),
            ("alice", "accept PAY-2"),
            ("carol", "dep start PAY-1"),
            ("bob", "dobro #PAY-1 https://wiki/x again"),
            ("bob", "dep finish PAY-9"),
        ]
    );
}

#[test]
fn a_second_release_in_the_conflict_group_is_refused_naming_the_holder() {
    let site = Site::new();
    site.done(
        "bob",
        "dobro #PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    );
    site.done("alice", "accept PAY-1");
    site.done("bob", "dep start PAY-1");
    site.done("dave", "dobro API-1 https://wiki/y no_need_admin");
    site.done("alice", "accept API-1");

    let reply = site.refused("dave", "dep start API-1");
    let started = site.recorded_at()[2].format("%H:%M UTC").to_string();
    assert_contains(
        &reply,
        &[
            "Conflict group backend-core",
            &link("PAY-1"),
            "started by bob",
            &started,
        ],
    );

    // The same service: the service lock is named.
    site.done("erin", "dobro PAY-2 https://wiki/z no_need_admin");
    site.done("alice", "accept PAY-2");
    let reply = site.refused("erin", "dep start PAY-2");
    assert_contains(
        &reply,
        &["Service billing is locked", &link("PAY-1"), "by bob"],
    );

    let locks = site.json(&["locks"]);
    assert_eq!(
        locks,
        serde_json::json!([
            {"lock": {"kind": "service", "name": "billing"}, "ticket": "PAY-1", "by": "bob",
             "since": rfc3339(site.recorded_at()[3])},
            {"lock": {"kind": "group", "name": "backend-core"}, "ticket": "PAY-1", "by": "bob",
             "since": rfc3339(site.recorded_at()[3])},
        ])
    );
}

#[test]
fn the_turn_spans_a_conflict_group_and_the_queue_says_so() {
    let site = Site::new();
    site.done(
        "bob",
        "dobro #PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    );
    site.done("alice", "accept PAY-1");
    site.done(
        "carol",
        "dobro #API-1 https://wiki/y New endpoint no_need_admin",
    );
    site.done("alice", "accept API-1");

    // billing and api share backend-core: PAY-1 asked first and is ready, so it goes first.
    assert_eq!(
        site.refused("carol", "dep start API-1"),
        "API-1 waits its turn: PAY-1 was requested earlier for the backend-core group and is \
         ready to start.\n"
    );
    let queue = site.done("carol", "queue");
    assert_contains(
        &queue,
        &[
            "PAY-1 (billing) by bob — #1 in line, accepted, ready to start",
            "API-1 (api) by carol — #2 in line, accepted, waiting for its turn (after PAY-1, \
             for the backend-core group)",
        ],
    );
    let items = site.json(&["queue"]);
    assert_eq!(items[1]["position"], 2);
    assert_eq!(
        items[1]["waiting_for"],
        serde_json::json!([{"kind": "turn", "ahead": "PAY-1",
                            "over": {"kind": "group", "name": "backend-core"}}])
    );
    let output = site.cmd(&["queue", "--format", "csv"]).output().unwrap();
    assert_contains(
        &stdout(&output),
        &["2,API-1,api,carol,accepted,\"turn (after PAY-1, group:backend-core)\"\n"],
    );
    let refused = site.json(&["history", "--type", "CommandRefused"]);
    assert_eq!(
        refused[0]["event"]["data"]["refusal"]["over"],
        serde_json::json!({"kind": "group", "name": "backend-core"})
    );

    // Once PAY-1 has gone and finished, API-1's turn has come.
    site.done("bob", "dep start PAY-1");
    site.done("bob", "dep finish PAY-1");
    site.done("carol", "dep start API-1");
}

#[test]
fn an_admin_who_starts_a_release_waiting_for_an_admin_joins_it() {
    let site = Site::new();
    site.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding");
    site.done("alice", "accept PAY-1");
    let reply = site.done("oleg", "dep start PAY-1");
    assert_contains(
        &reply,
        &[
            "Admin found: oleg joins PAY-1. The admin starts it.",
            "Deployment of PAY-1 started by oleg on billing.",
        ],
    );
    let types: Vec<String> = site
        .json(&["history", "--ticket", "PAY-1"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "ReleaseRequested",
            "ReleaseApproved",
            "AdminJoined",
            "DeploymentStarted"
        ]
    );

    // A requester who is an admin still needs another admin: only the refusal is recorded.
    site.done("oleg", "dobro #API-1 https://wiki/y New endpoint");
    site.done("alice", "accept API-1");
    site.done("bob", "dep finish PAY-1");
    assert_contains(
        &site.refused("oleg", "dep start API-1"),
        &["API-1 needs an admin"],
    );
    assert_eq!(site.history(&["--type", "AdminJoined"]).len(), 1);
}

#[test]
fn a_stuck_deployment_is_taken_over_by_two_people_before_the_minimum() {
    let site = Site::new();
    site.done(
        "bob",
        "dobro #PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    );
    site.done("alice", "accept PAY-1");
    site.done("bob", "dep start PAY-1");
    site.done(
        "carol",
        "dobro #API-1 https://wiki/y New endpoint no_need_admin",
    );
    site.done("alice", "accept API-1");
    site.refused("carol", "dep start API-1");

    assert_eq!(
        site.refused("carol", "dep takeover PAY-1 runner gone"),
        "Only an admin can do that.\n"
    );
    assert_contains(
        &site.refused("oleg", "dep takeover PAY-1 runner gone"),
        &[
            "an admin alone may take it over once it has run 30 min",
            "`dep takeover PAY-1 --force <reason>`",
        ],
    );
    assert_contains(
        &site.done("oleg", "dep takeover PAY-1 --force runner gone"),
        &[
            "oleg proposes to take over the deployment of PAY-1; an approver (U01APPROVER or \
             alice) has to confirm with `dep takeover PAY-1 --force`. Reason: runner gone",
        ],
    );
    assert_contains(
        &site.refused("oleg", "dep takeover PAY-1 --force"),
        &["oleg proposed to take over PAY-1", "four eyes"],
    );
    assert_contains(
        &site.done("alice", "dep takeover PAY-1 --force"),
        &[
            "Deployment of PAY-1 taken over by oleg and alice (forced); its locks are free and \
           the release is closed. Reason: runner gone",
        ],
    );
    // The locks are free: the deployment that waited starts.
    site.done("carol", "dep start API-1");

    let abandoned = site.json(&["history", "--type", "DeploymentAbandoned"]);
    assert_eq!(abandoned[0]["actor"], "alice");
    assert_eq!(
        abandoned[0]["event"]["data"],
        serde_json::json!({"ticket": "PAY-1", "by": "alice", "reason": "runner gone",
                           "proposed_by": "oleg"})
    );
    let ended = site.json(&["deployments", "--outcome", "abandoned"]);
    assert_eq!(ended.as_array().unwrap().len(), 1);
    assert_eq!(ended[0]["ticket"], "PAY-1");
    assert_eq!(ended[0]["reason"], "runner gone");
    site.cmd(&["verify"]).assert().success();
}

#[test]
fn an_admin_alone_takes_over_a_deployment_older_than_the_minimum() {
    let site = Site::new();
    let config = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        format!("{config}\n[locks]\ntakeover_after = \"0s\"\n"),
    )
    .unwrap();
    site.done(
        "bob",
        "dobro #PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    );
    site.done("alice", "accept PAY-1");
    site.done("bob", "dep start PAY-1");
    assert_eq!(
        site.done("oleg", "dep takeover PAY-1 the pipeline crashed"),
        "Deployment of PAY-1 taken over by oleg; its locks are free and the release is \
         closed. Reason: the pipeline crashed\n"
    );
    assert_eq!(site.json(&["locks"]), serde_json::json!([]));
    assert_eq!(site.json(&["queue"]), serde_json::json!([]));
    assert_contains(
        &site.refused("bob", "dep finish PAY-1"),
        &["There is no open request for PAY-1"],
    );
}

#[test]
fn text_that_is_not_a_command_exits_2_and_names_the_usage() {
    let site = Site::new();
    let reply = site.invalid("bob", "deploy it please");
    assert_contains(
        &reply,
        &["I don't know `deploy it`", "Usage: dep start TICKET"],
    );

    let reply = site.invalid("bob", "fooo");
    assert_contains(
        &reply,
        &[
            "I don't know `fooo`.",
            "• dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]",
            "• dep start TICKET",
        ],
    );
    assert_eq!(
        site.invalid("bob", "acept PAY-1"),
        "I don't know `acept`. Did you mean `accept`? Usage: accept TICKET\n"
    );
    assert_eq!(
        site.invalid("bob", "accept"),
        "`accept` is missing the ticket; usage: accept TICKET\n"
    );
    assert_eq!(
        site.invalid("bob", "accept PAY-1 now"),
        "`accept` does not take `now`; usage: accept TICKET\n"
    );
    // `#bad` is not shaped like a ticket at all, so it is not understood rather than checked.
    let reply = site.invalid("bob", "dobro #bad https://x");
    assert_contains(
        &reply,
        &[
            "`#bad` is not a ticket key",
            "usage: dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]",
        ],
    );
    // Nothing is recorded for text that was not understood: only the policy the first process
    // recorded when it started.
    assert_eq!(site.history(&[]), [0]);
    assert_eq!(site.history(&["--type", "PolicyChanged"]), [0]);
}

#[test]
fn failed_checks_are_each_named() {
    let site = Site::new();
    let reply = site.refused("bob", "dobro PAY-3 Fix billing rounding");
    assert_eq!(
        reply,
        format!(
            "{} is not ready to be requested:\n\
             • a wiki or release-notes link (http or https) is missing\n",
            link("PAY-3")
        )
    );

    // `P-1` is shaped like a ticket but fails the configured pattern, has no link, and the
    // config maps project P to no services.
    let reply = site.refused("bob", "dobro #P-1 quick fix");
    assert_eq!(
        reply,
        format!(
            "{} is not ready to be requested:\n\
             • the ticket key does not match `^[A-Z][A-Z0-9]+-[0-9]+$`\n\
             • a wiki or release-notes link (http or https) is missing\n\
             • no services are configured for project P; name them with `services=a,b`\n",
            link("P-1")
        )
    );
    assert_eq!(site.history(&["--type", "CommandRefused"]), [1, 2]);
    assert_eq!(
        site.history(&["--type", "ReleaseRequested"]),
        Vec::<u64>::new()
    );
}

// --- listings --------------------------------------------------------------------------------

#[test]
fn a_long_listing_piped_into_head_exits_quietly() {
    use std::io::Read;
    let site = Site::new();
    let commands: String = (1..=1000)
        .map(|n| format!("dobro #PAY-{n} https://wiki/x notes for a long history\n"))
        .collect();
    site.cmd(&["chat", "--as", "bob"])
        .write_stdin(commands)
        .assert()
        .success();
    for format in ["json", "csv", "table"] {
        let mut history = bare_process(site.path())
            .arg("--config")
            .arg(&site.config)
            .args(["history", "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run dobrobot history");
        let mut head = [0u8; 100];
        history
            .stdout
            .take()
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        // The reader is gone (its end of the pipe dropped) long before 1,000 entries are written.
        let output = history.wait_with_output().unwrap();
        assert!(output.status.success(), "{format}: {:?}", output.status);
        let said = stderr(&output);
        assert!(
            !said.contains("error") && !said.contains("Broken pipe"),
            "{format}: {said}"
        );
    }
}

#[test]
fn queue_in_json_csv_and_table() {
    let site = Site::new();
    site.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding");
    site.done("carol", "dobro #PAY-2 https://wiki/z Refunds no_need_admin");
    site.done("alice", "accept PAY-2");

    let queue = site.json(&["queue"]);
    let items = queue.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for key in [
        "ticket",
        "services",
        "requester",
        "status",
        "position",
        "waiting_for",
    ] {
        assert!(
            items[0].get(key).is_some(),
            "queue items carry `{key}`: {queue:#}"
        );
    }
    assert_eq!(items[0]["ticket"], "PAY-1");
    assert_eq!(items[0]["services"], serde_json::json!(["billing"]));
    assert_eq!(items[0]["requester"], "bob");
    assert_eq!(items[0]["status"], "requested");
    assert_eq!(items[0]["position"], 1);
    assert_eq!(
        items[0]["waiting_for"],
        serde_json::json!([{"kind": "approval"}, {"kind": "admin"}])
    );
    assert_eq!(items[1]["ticket"], "PAY-2");
    assert_eq!(items[1]["status"], "accepted");
    assert_eq!(items[1]["position"], 2);
    assert_eq!(items[1]["waiting_for"], serde_json::json!([]));

    let output = site.cmd(&["queue", "--format", "csv"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "position,ticket,services,requester,status,waiting_for\n\
         1,PAY-1,billing,bob,requested,approval; admin\n\
         2,PAY-2,billing,carol,accepted,\n"
    );

    site.cmd(&["queue"])
        .assert()
        .success()
        .stdout(predicate::str::contains("waiting_for").and(predicate::str::contains("PAY-2")));

    // As of revision 1 (0 is the policy), only PAY-1 had been requested.
    let queue = site.json(&["queue", "--revision", "1"]);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["ticket"], "PAY-1");
}

#[test]
fn deployments_in_json_and_csv() {
    let site = Site::new();
    site.seed();
    let times = site.recorded_at();

    let deployments = site.json(&["deployments"]);
    let all = deployments.as_array().unwrap();
    assert_eq!(all.len(), 2);
    let pay = &all[0];
    assert_eq!(pay["ticket"], "PAY-1");
    assert_eq!(pay["services"], serde_json::json!(["billing"]));
    assert_eq!(pay["requester"], "bob");
    assert_eq!(pay["approver"], "alice");
    assert_eq!(pay["admin"], "oleg");
    assert_eq!(pay["started_at"], rfc3339(times[4]));
    assert_eq!(pay["finished_at"], rfc3339(times[8]));
    assert_eq!(pay["outcome"], "finished");
    let api = &all[1];
    assert_eq!(api["ticket"], "API-1");
    assert_eq!(api["approver"], "alice");
    assert_eq!(api["admin"], Value::Null);
    assert_eq!(api["started_at"], Value::Null);
    assert_eq!(api["outcome"], Value::Null);

    let output = site
        .cmd(&["deployments", "--format", "csv"])
        .output()
        .unwrap();
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "ticket,services,requester,approver,admin,started_at,finished_at,outcome,duration_secs"
    );
    assert!(
        lines[1].starts_with("PAY-1,billing,bob,alice,oleg,"),
        "{text}"
    );
    assert!(lines[1].contains(",finished,"), "{text}");
    assert_eq!(lines[2], "API-1,api,carol,alice,,,,open,");
    assert_eq!(lines.len(), 3);
}

#[test]
fn history_filters() {
    let site = Site::new();
    site.seed();
    assert_eq!(site.history(&[]), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(site.history(&["--type", "PolicyChanged"]), [0]);
    assert_eq!(site.history(&["--ticket", "PAY-1"]), [1, 2, 3, 4, 8]);
    assert_eq!(site.history(&["--ticket", "#pay-1"]), [1, 2, 3, 4, 8]);
    assert_eq!(site.history(&["--actor", "alice"]), [2, 6]);
    assert_eq!(site.history(&["--actor", "carol"]), [5, 7]);
    assert_eq!(site.history(&["--service", "billing"]), [1, 2, 3, 4, 8]);
    assert_eq!(site.history(&["--service", "api"]), [5, 6, 7]);
    assert_eq!(site.history(&["--type", "CommandRefused"]), [7]);
    assert_eq!(site.history(&["--type", "DeploymentStarted"]), [4]);
    assert_eq!(
        site.history(&["--service", "billing", "--actor", "bob"]),
        [1, 4, 8]
    );

    let times = site.recorded_at();
    let since = rfc3339(times[3]);
    let until = rfc3339(times[6]);
    assert_eq!(
        site.history(&["--since", &since, "--until", &until]),
        [3, 4, 5, 6],
        "both bounds are inclusive"
    );
    let since = site.between(6, 7);
    assert_eq!(site.history(&["--since", &since]), [7, 8]);
    assert_eq!(site.history(&["--until", "1h ago"]), Vec::<u64>::new());
    assert_eq!(site.history(&["--since", "1h ago"]).len(), 9);

    let refused = site.json(&["history", "--type", "CommandRefused"]);
    assert_eq!(refused[0]["actor"], "carol");
    assert_eq!(refused[0]["command"], "dep start API-1");
    assert_eq!(refused[0]["event"]["data"]["refusal"]["kind"], "lock_held");

    let output = site.cmd(&["history", "--format", "csv"]).output().unwrap();
    let text = stdout(&output);
    assert_eq!(
        text.lines().next(),
        Some("revision,recorded_at,type,ticket,services,actor,source,command,detail")
    );
    assert_eq!(
        text.lines().count(),
        10,
        "the header, the policy and eight commands"
    );
}

#[test]
fn who_deployed_a_service() {
    let site = Site::new();
    site.seed();
    // The seed's API-1 is ready and shares backend-core with billing: it would go first.
    site.done("carol", "cancel API-1");
    site.done("bob", "dobro PAY-2 https://wiki/z Refunds no_need_admin");
    site.done("alice", "accept PAY-2");
    site.done("bob", "dep start PAY-2");
    site.done("oleg", "dep rollback PAY-2 refunds double-charged");

    let who = site.json(&["who", "billing"]);
    let rows: Vec<(&str, &str, &str)> = who
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["ticket"].as_str().unwrap(),
                d["started_by"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("PAY-2", "bob", "rolled_back"),
            ("PAY-1", "bob", "finished")
        ]
    );
    assert_eq!(site.json(&["who", "api"]), serde_json::json!([]));
    site.cmd(&["who", "billing", "--format", "csv"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains(",rolled_back,").and(predicate::str::contains(",finished,")),
        );

    let since = site.between(9, 10);
    let who = site.json(&["who", "billing", "--since", &since]);
    assert_eq!(who.as_array().unwrap().len(), 1);
    assert_eq!(who[0]["ticket"], "PAY-2");

    let reply = site.done("carol", "who billing");
    assert_contains(
        &reply,
        &[
            "Deployments of billing, most recent first:",
            "PAY-2",
            ": rolled back",
            ": finished",
        ],
    );
}

#[test]
fn replay_shows_the_queue_and_locks_as_they_were() {
    let site = Site::new();
    site.seed();

    // After the accept, before the admin joined.
    let at = site.between(2, 3);
    let replay = site.json(&["replay", "--at", &at]);
    assert_eq!(replay["revision"], 2);
    assert_eq!(replay["queue"].as_array().unwrap().len(), 1);
    assert_eq!(replay["queue"][0]["ticket"], "PAY-1");
    assert_eq!(replay["queue"][0]["status"], "accepted");
    assert_eq!(
        replay["queue"][0]["waiting_for"],
        serde_json::json!([{"kind": "admin"}])
    );
    assert_eq!(replay["locks"], serde_json::json!([]));

    // While PAY-1 was deploying and API-1 waited for the group lock.
    let at = site.between(7, 8);
    let replay = site.json(&["replay", "--at", &at]);
    assert_eq!(replay["revision"], 7);
    let queue: Vec<(&str, &str)> = replay["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["ticket"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    assert_eq!(queue, [("PAY-1", "deploying"), ("API-1", "accepted")]);
    assert_eq!(
        replay["queue"][1]["waiting_for"],
        serde_json::json!([{"kind": "lock", "lock": {"kind": "group", "name": "backend-core"}, "ticket": "PAY-1"}])
    );
    let locks: Vec<&str> = replay["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lock"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(locks, ["billing", "backend-core"]);
    assert_eq!(replay["frozen"], false);

    // Now: PAY-1 is done and its locks are free.
    let replay = site.json(&["replay", "--at", "now"]);
    assert_eq!(replay["revision"], 8);
    assert_eq!(replay["queue"].as_array().unwrap().len(), 1);
    assert_eq!(replay["queue"][0]["ticket"], "API-1");
    assert_eq!(replay["locks"], serde_json::json!([]));

    // The table form says as of when.
    site.cmd(&["replay", "--at", &at])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("(ledger revision 7)")
                .and(predicate::str::contains("group:backend-core")),
        );
}

#[test]
fn suspects_in_the_window_before_a_time() {
    let site = Site::new();
    site.seed();
    let times = site.recorded_at();
    let after = rfc3339(times[8] + Duration::seconds(1));

    let suspects = site.json(&[
        "suspects",
        "--at",
        &after,
        "--window",
        "1h",
        "--service",
        "billing",
    ]);
    assert_eq!(suspects.as_array().unwrap().len(), 1);
    assert_eq!(suspects[0]["ticket"], "PAY-1");
    assert_eq!(suspects[0]["outcome"], "finished");

    // API-1 never started, so nothing on api is suspect.
    let suspects = site.json(&[
        "suspects",
        "--at",
        &after,
        "--window",
        "1h",
        "--service",
        "api",
    ]);
    assert_eq!(suspects, serde_json::json!([]));

    // Before PAY-1 started there was nothing to suspect.
    let before = site.between(3, 4);
    let suspects = site.json(&["suspects", "--at", &before, "--window", "1h"]);
    assert_eq!(suspects, serde_json::json!([]));

    // While it was deploying, it is a suspect too.
    let during = site.between(7, 8);
    let suspects = site.json(&["suspects", "--at", &during, "--service", "billing"]);
    assert_eq!(suspects[0]["ticket"], "PAY-1");
    assert_eq!(suspects[0]["outcome"], Value::Null);

    // Finished more than the window before: not a suspect.
    let later = rfc3339(times[8] + Duration::hours(2));
    let suspects = site.json(&["suspects", "--at", &later, "--window", "1h"]);
    assert_eq!(suspects, serde_json::json!([]));
}

#[test]
fn bad_times_fail_with_a_clear_message() {
    let site = Site::new();
    site.cmd(&["replay", "--at", "yesterday-ish"])
        .assert()
        .failure()
        .stdout("")
        .stderr(
            predicate::str::contains("`yesterday-ish` is not a time")
                .and(predicate::str::contains("RFC 3339"))
                .and(predicate::str::contains("2h ago")),
        );
    site.cmd(&["suspects", "--at", "now", "--window", "forever"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("`forever` is not a duration"));
    site.cmd(&["history", "--since", "last tuesday"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("`last tuesday` is not a time"));
}

#[test]
fn verify_passes_on_a_ledger_the_cli_wrote() {
    let site = Site::new();
    site.seed();
    let output = site.cmd(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "ok: 9 events in dobrobot-ledger-prod, hash chain intact, every event valid, 0 snapshots equal the fold; last hash "
        ),
        "{text}"
    );
}

// --- config ----------------------------------------------------------------------------------

#[test]
fn the_config_file_from_the_issue_works_as_written() {
    let site = Site::with_config(tempfile::tempdir().unwrap(), ISSUE_CONFIG);
    let reply = site.done("bob", "dobro PAY-1 https://wiki/x Fix billing rounding");
    // tracker_url makes tickets links; [services] maps PAY to billing; [roles] names approvers.
    assert_contains(
        &reply,
        &[
            &format!("{} (billing)", link("PAY-1")),
            "Waiting for approval by U01APPROVER or alice",
        ],
    );
    site.done("U01APPROVER", "accept PAY-1");
    site.done("oleg", "here PAY-1");
    assert_contains(
        &site.done("bob", "dep start PAY-1"),
        &["Conflict group locked: backend-core."],
    );
    // The store is relative to the working directory, as written.
    assert!(site.path().join("data/ledger.db").is_file());
}

#[test]
fn an_unknown_key_in_the_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = ISSUE_CONFIG.replace("approvers =", "aprovers =");
    let site = Site::with_config(dir, &text);
    let output = site.cmd(&["queue"]).output().unwrap();
    assert!(!output.status.success());
    let errors = stderr(&output);
    assert_contains(
        &errors,
        &[
            "dobrobot.toml",
            "unknown field `aprovers`, expected `approvers` or `admins`",
        ],
    );
    assert_eq!(
        errors.matches("unknown field").count(),
        1,
        "said once:\n{errors}"
    );
    assert!(!site.path().join("data").exists(), "nothing was opened");

    let site = Site::with_config(tempfile::tempdir().unwrap(), "enviroment = \"prod\"\n");
    site.cmd(&["queue"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown field `enviroment`"));
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    bare(dir.path())
        .args(["--config", "nowhere.toml", "queue"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot read config file nowhere.toml",
        ));
}

#[test]
fn the_environment_overrides_the_file() {
    let site = Site::new();
    let other = site.path().join("other.db");
    site.cmd(&[
        "chat",
        "--as",
        "bob",
        "dobro PAY-1 https://wiki/x no_need_admin",
    ])
    .env("DOBROBOT_STORE", format!("sqlite://{}", other.display()))
    .env("DOBROBOT_APPROVERS", "carol")
    .assert()
    .success()
    .stdout(predicate::str::contains(
        "Waiting for approval by carol (no admin needed).",
    ));
    assert!(other.is_file());
    assert!(!site.path().join("ledger.db").exists());

    // DOBROBOT_CONFIG names the file like --config does.
    bare(site.path())
        .env("DOBROBOT_CONFIG", &site.config)
        .env("DOBROBOT_STORE", format!("sqlite://{}", other.display()))
        .env("DOBROBOT_APPROVERS", "carol")
        .args(["chat", "--as", "carol", "accept PAY-1"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("carol accepted"));
}

#[test]
fn with_no_config_at_all_it_runs_on_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    bare(dir.path())
        .args(["chat", "--as", "bob", "queue"])
        .assert()
        .code(0)
        .stdout("The queue is empty.\n");
    assert!(dir.path().join("data/ledger.db").is_file());

    // No roles are configured: nobody can approve, and the request names no approver.
    bare(dir.path())
        .args([
            "chat",
            "--as",
            "bob",
            "dobro PAY-1 https://wiki/x services=billing",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Waiting for approval by an approver",
        ));
    bare(dir.path())
        .args(["chat", "--as", "alice", "accept PAY-1"])
        .assert()
        .code(1)
        .stdout("Only an approver can do that.\n");
    bare(dir.path()).arg("verify").assert().success();
}

#[test]
fn chat_reads_commands_from_stdin_and_prints_json_lines() {
    let site = Site::new();
    let output = site
        .cmd(&["chat", "--as", "bob", "--json"])
        .write_stdin("dobro PAY-1 https://wiki/x no_need_admin\n\naccept PAY-1\nqueue\n")
        .output()
        .unwrap();
    assert!(output.status.success());
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["done", "refused", "done"]);
    assert_eq!(lines[1]["text"], "Only an approver can do that.");
    assert_contains(
        lines[2]["text"].as_str().unwrap(),
        &["Release queue:", "PAY-1", "waiting for approval"],
    );
}

// --- serve -----------------------------------------------------------------------------------

/// `serve` loads the ledger, then its projections follow the store: a command recorded by
/// another process shows up in its log. Logs are JSON lines with `--log-format json`.
#[test]
fn serve_follows_the_ledger_as_commands_are_recorded() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let site = Site::new();
    site.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding");
    /// Stopped when the test ends, also when it fails.
    struct Serve(std::process::Child);
    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // Its own free port, so that nothing else listening on the default one matters.
    let mut serve = Serve(
        std::process::Command::new(env!("CARGO_BIN_EXE_dobrobot"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&site.config)
            .current_dir(site.path())
            .env("RUST_LOG", "info")
            .env("DOBROBOT_HTTP_ADDR", "127.0.0.1:0")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start serve"),
    );
    let (lines, logged) = mpsc::channel::<Value>();
    let stderr = serve.0.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let json = serde_json::from_str(&line).expect("every log line is JSON");
            if lines.send(json).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match logged.recv_timeout(left) {
                Ok(line) if what(&line) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("serve did not log what was expected in time");
    };
    let message = |line: &Value| line["fields"]["message"].as_str().unwrap_or("").to_string();

    // Revision 0 is the policy the first `chat` recorded, 1 the request.
    let serving = wait_for(&|l| message(l) == "dobrobot is serving the ledger");
    assert_eq!(serving["fields"]["revision"], "Some(1)");
    wait_for(&|l| message(l) == "projections caught up");

    site.done("alice", "accept PAY-1");
    let recorded = wait_for(&|l| message(l) == "recorded" && l["fields"]["revision"] == 2);
    assert_eq!(recorded["fields"]["event"], "ReleaseApproved");
    assert_eq!(recorded["fields"]["ticket"], "PAY-1");
    assert_eq!(recorded["fields"]["actor"], "alice");
    drop(serve);
}

// --- usage -----------------------------------------------------------------------------------

/// Every command's `--help` ends with an example of it.
#[test]
fn every_command_shows_an_example() {
    let site = Site::new();
    for command in [
        vec!["serve"],
        vec!["chat"],
        vec!["queue"],
        vec!["locks"],
        vec!["deployments"],
        vec!["history"],
        vec!["who"],
        vec!["replay"],
        vec!["suspects"],
        vec!["verify"],
        vec!["migrate"],
        vec!["projections", "install"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let output = site.cmd(&args).output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        let example = format!("dobrobot {}", command.join(" "));
        assert!(
            help.contains("Example:") && help.contains(&example),
            "{command:?}:\n{help}"
        );
    }
}

/// A flag a command would ignore, or an event type the ledger does not have, is a usage error
/// (exit 2), not a silent empty answer.
#[test]
fn ignored_flags_and_unknown_event_types_are_usage_errors() {
    let site = Site::new();
    let replay = site
        .cmd(&["replay", "--at", "now", "--revision", "3"])
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&replay.stderr).contains("--revision does not apply"));
    let history = site
        .cmd(&["history", "--type", "Exploded"])
        .output()
        .unwrap();
    assert_eq!(history.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&history.stderr).contains("DeploymentStarted"));
    let fine = site
        .cmd(&["history", "--type", "deploymentstarted"])
        .output()
        .unwrap();
    assert!(fine.status.success());
}
