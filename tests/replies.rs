//! Every reply a person reads, as an inline snapshot: a change in wording is a reviewed diff.
//!
//! The replies come from the real `Bot` on a real SQLite file in a temp dir, configured with the
//! issue's config (tracker links on), and a clock that starts at 2026-11-25 09:00 UTC and moves
//! one minute per recorded command, so the times in the texts are stable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use insta::assert_snapshot;
use tempfile::TempDir;

use dobrobot::answer::ReplyKind;
use dobrobot::app::{App, Settings};
use dobrobot::config::Config;
use dobrobot::domain::{CheckFailure, Refusal, TicketKey, UserId};
use dobrobot::envelope::{Actor, Source};
use dobrobot::ledger::{Clock, Options};
use dobrobot::render::Renderer;

/// The example config of the README (its store is replaced by a temp file).
const CONFIG: &str = include_str!("../dobrobot.example.toml");

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

/// The app as `dobrobot chat` builds it, on its own ledger file, rendering plain text.
struct Chat {
    app: App,
    renderer: Renderer,
    _dir: TempDir,
}

impl Chat {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("dobrobot.toml");
        std::fs::write(&path, CONFIG).expect("write the config");
        let mut config = Config::from_file(&path).expect("the config parses");
        config.store = format!("sqlite://{}", dir.path().join("ledger.db").display());
        // A minute per batch, from the minute before `start()`: the policy the app records when
        // it starts takes that one, and the first command is recorded at `start()`.
        let minutes = Arc::new(AtomicI64::new(-1));
        let clock = Clock::from_fn(move || {
            start() + Duration::minutes(minutes.fetch_add(1, Ordering::SeqCst))
        });
        let options = Options {
            clock,
            ..Options::default()
        };
        let renderer = Renderer::plain(config.tracker_url.clone());
        let settings = Settings {
            ledger: options,
            ..Settings::chat()
        };
        let app = App::build(config, settings).await.expect("build the app");
        Chat {
            app,
            renderer,
            _dir: dir,
        }
    }

    async fn say(&self, user: &str, text: &str, delivery: Option<&str>) -> (ReplyKind, String) {
        let id = UserId::parse(user).expect("a user id");
        let actor = Actor {
            name: id.to_string(),
            id,
            source: Source::Slack,
        };
        // As the Slack front hands it over: its markup decoded into plain text.
        let text = dobrobot::slack::markup::decode(text);
        let answer = self
            .app
            .bot
            .handle(actor, &text, delivery.map(String::from))
            .await;
        (answer.kind(), self.renderer.answer(&answer))
    }

    async fn expect(&self, kind: ReplyKind, user: &str, text: &str) -> String {
        let (actual, reply) = self.say(user, text, None).await;
        assert_eq!(actual, kind, "`{text}` as {user}:\n{reply}");
        reply
    }

    /// Carried out (or answered); the reply.
    async fn done(&self, user: &str, text: &str) -> String {
        self.expect(ReplyKind::Done, user, text).await
    }

    /// Refused and recorded; the reply.
    async fn refused(&self, user: &str, text: &str) -> String {
        self.expect(ReplyKind::Refused, user, text).await
    }

    /// Not understood; the reply.
    async fn invalid(&self, user: &str, text: &str) -> String {
        self.expect(ReplyKind::Invalid, user, text).await
    }
}

// --- what the bot says when a command is carried out ----------------------------------------

#[tokio::test]
async fn requests() {
    let chat = Chat::new().await;
    assert_snapshot!(
        chat.done("bob", "dobro #PAY-1 https://wiki/x Fix billing rounding").await,
        @"
    bob asks to release PAY-1 (billing).
    > Fix billing rounding
    Ticket: https://tracker.example.com/browse/PAY-1
    Release notes: https://wiki/x
    Waiting for approval by U01APPROVER or alice (needs an admin).
    "
    );
    assert_snapshot!(
        chat.done("bob", "dobro API-1 https://wiki/y New endpoint no_need_admin").await,
        @"
    bob asks to release API-1 (api).
    > New endpoint
    Ticket: https://tracker.example.com/browse/API-1
    Release notes: https://wiki/y
    Waiting for approval by U01APPROVER or alice (no admin needed).
    "
    );
    // Slack's formatting: a mention, a link with a title, services named, no comment.
    assert_snapshot!(
        chat.done("carol", "<@U0BOT> dobro pay-2 <https://wiki/z|Release notes> services=billing,ledger").await,
        @"
    carol asks to release PAY-2 (billing, ledger).
    Ticket: https://tracker.example.com/browse/PAY-2
    Release notes: https://wiki/z
    Waiting for approval by U01APPROVER or alice (needs an admin).
    "
    );
}

#[tokio::test]
async fn accept_here_reject_cancel() {
    let chat = Chat::new().await;
    chat.done("bob", "dobro PAY-1 https://wiki/x Fix billing rounding")
        .await;
    chat.done(
        "bob",
        "dobro API-1 https://wiki/y New endpoint no_need_admin",
    )
    .await;
    chat.done("bob", "dobro PAY-2 https://wiki/z Refunds").await;
    chat.done("carol", "dobro PAY-3 https://wiki/w Invoices")
        .await;

    // Accepted, an admin is needed.
    assert_snapshot!(chat.done("alice", "accept PAY-1").await, @"alice accepted PAY-1. Next: an admin (oleg) joins with `here PAY-1`.");
    // Accepted, no admin needed.
    assert_snapshot!(chat.done("alice", "accept API-1").await, @"alice accepted API-1. Next: `dep start API-1`.");
    // The admin joins after the accept, then before it.
    assert_snapshot!(chat.done("oleg", "here PAY-1").await, @"Admin found: oleg joins PAY-1. Next: `dep start PAY-1`.");
    assert_snapshot!(chat.done("oleg", "here PAY-2").await, @"Admin found: oleg joins PAY-2. Still waiting for approval.");
    assert_snapshot!(chat.done("alice", "reject PAY-2 no rollback plan").await, @"alice rejected PAY-2: no rollback plan");
    assert_snapshot!(chat.done("carol", "cancel PAY-3").await, @"carol cancelled the request for PAY-3.");
}

#[tokio::test]
async fn deployments() {
    let chat = Chat::new().await;
    chat.done(
        "bob",
        "dobro PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    )
    .await;
    chat.done("alice", "accept PAY-1").await;
    // billing is in the backend-core conflict group.
    assert_snapshot!(chat.done("bob", "dep start PAY-1").await, @"Deployment of PAY-1 started by bob on billing. Conflict group locked: backend-core. When done: `dep finish PAY-1` or `dep rollback PAY-1 <reason>`.");
    assert_snapshot!(chat.done("bob", "dep finish PAY-1").await, @"Deployment of PAY-1 finished by bob.");

    chat.done("bob", "dobro PAY-2 https://wiki/x Refunds no_need_admin")
        .await;
    chat.done("alice", "accept PAY-2").await;
    chat.done("bob", "dep start PAY-2").await;
    assert_snapshot!(chat.done("oleg", "dep rollback PAY-2 error rate doubled").await, @"Deployment of PAY-2 rolled back by oleg: error rate doubled");

    // A service in no conflict group.
    chat.done(
        "bob",
        "dobro WEB-1 https://wiki/w services=web no_need_admin",
    )
    .await;
    chat.done("alice", "accept WEB-1").await;
    assert_snapshot!(chat.done("bob", "dep start WEB-1").await, @"Deployment of WEB-1 started by bob on web. When done: `dep finish WEB-1` or `dep rollback WEB-1 <reason>`.");
}

#[tokio::test]
async fn freezes() {
    let chat = Chat::new().await;
    assert_snapshot!(chat.done("alice", "freeze end of quarter").await, @"alice froze releases of all services: end of quarter");
    assert_snapshot!(chat.done("alice", "unfreeze").await, @"alice ended the freeze. Releases may start again.");
    assert_snapshot!(
        chat.done("alice", "freeze incident INC-7 services=billing,api").await,
        @"alice froze releases of billing, api: incident INC-7"
    );
}

// --- refusals ---------------------------------------------------------------------------------

#[tokio::test]
async fn refusals_of_requests() {
    let chat = Chat::new().await;
    // Every check that fails is named.
    assert_snapshot!(chat.refused("bob", "dobro P-1 quick fix").await, @"
    P-1 is not ready to be requested:
    • the ticket key does not match `^[A-Z][A-Z0-9]+-[0-9]+$`
    • a wiki or release-notes link (http or https) is missing
    • no services are configured for project P; name them with `services=a,b`
    ");
    assert_snapshot!(chat.refused("bob", "dobro PAY-1 Fix billing rounding").await, @"
    PAY-1 is not ready to be requested:
    • a wiki or release-notes link (http or https) is missing
    ");
    chat.done("bob", "dobro PAY-1 https://wiki/x Fix billing rounding")
        .await;
    assert_snapshot!(chat.refused("carol", "dobro PAY-1 https://wiki/x again").await, @"PAY-1 already has an open request (requested).");
    assert_snapshot!(chat.refused("alice", "accept PAY-9").await, @"There is no open request for PAY-9.");
}

#[tokio::test]
async fn refusals_by_role() {
    let chat = Chat::new().await;
    chat.done("bob", "dobro PAY-1 https://wiki/x Fix billing rounding")
        .await;
    assert_snapshot!(chat.refused("bob", "accept PAY-1").await, @"Only an approver can do that.");
    assert_snapshot!(chat.refused("bob", "here PAY-1").await, @"Only an admin can do that.");
    assert_snapshot!(chat.refused("carol", "dep start PAY-1").await, @"Only the requester or an admin can do that.");
    assert_snapshot!(chat.refused("carol", "cancel PAY-1").await, @"Only the requester or an approver can do that.");
    assert_snapshot!(chat.refused("bob", "freeze because").await, @"Only an approver can do that.");

    chat.done("alice", "dobro PAY-2 https://wiki/y Refunds")
        .await;
    assert_snapshot!(chat.refused("alice", "accept PAY-2").await, @"You requested PAY-2, so another approver has to accept it (four eyes).");
}

#[tokio::test]
async fn refusals_on_the_way_to_a_start() {
    let chat = Chat::new().await;
    chat.done("bob", "dobro PAY-1 https://wiki/x Fix billing rounding")
        .await;
    assert_snapshot!(chat.refused("bob", "dep start PAY-1").await, @"PAY-1 is not accepted yet: an approver has to `accept PAY-1` first.");
    assert_snapshot!(chat.refused("bob", "dep finish PAY-1").await, @"PAY-1 has not started deploying.");
    chat.done("alice", "accept PAY-1").await;
    assert_snapshot!(chat.refused("U01APPROVER", "accept PAY-1").await, @"PAY-1 was already accepted by alice.");
    assert_snapshot!(chat.refused("bob", "dep start PAY-1").await, @"PAY-1 needs an admin: an admin has to say `here PAY-1` first.");
    chat.done("oleg", "here PAY-1").await;
    assert_snapshot!(chat.refused("oleg", "here PAY-1").await, @"oleg already joined PAY-1 as its admin.");
    chat.done("bob", "dep start PAY-1").await;
    assert_snapshot!(chat.refused("bob", "dep start PAY-1").await, @"PAY-1 is already deploying.");
    assert_snapshot!(chat.refused("bob", "cancel PAY-1").await, @"PAY-1 is already deploying.");

    chat.done(
        "bob",
        "dobro API-1 https://wiki/y New endpoint no_need_admin",
    )
    .await;
    assert_snapshot!(chat.refused("oleg", "here API-1").await, @"API-1 does not need an admin.");
}

#[tokio::test]
async fn refusals_for_locks_turns_and_freezes() {
    let chat = Chat::new().await;
    chat.done(
        "bob",
        "dobro PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    )
    .await;
    chat.done("alice", "accept PAY-1").await;
    chat.done("bob", "dobro PAY-2 https://wiki/y Refunds no_need_admin")
        .await;
    chat.done("alice", "accept PAY-2").await;
    // PAY-1 was requested first and is ready.
    assert_snapshot!(chat.refused("bob", "dep start PAY-2").await, @"PAY-2 waits its turn: PAY-1 was requested earlier for billing and is ready to start.");

    chat.done("bob", "dep start PAY-1").await;
    assert_snapshot!(chat.refused("bob", "dep start PAY-2").await, @"Service billing is locked by the deployment of PAY-1, started by bob at 2026-11-25 09:05 UTC.");
    chat.done(
        "carol",
        "dobro API-1 https://wiki/z New endpoint no_need_admin",
    )
    .await;
    chat.done("alice", "accept API-1").await;
    assert_snapshot!(chat.refused("carol", "dep start API-1").await, @"Conflict group backend-core is locked by the deployment of PAY-1, started by bob at 2026-11-25 09:05 UTC.");
    chat.done("bob", "dep finish PAY-1").await;

    chat.done("alice", "freeze incident INC-7 services=api")
        .await;
    assert_snapshot!(chat.refused("carol", "dep start API-1").await, @"Releases of api are frozen by alice since 2026-11-25 09:11 UTC: incident INC-7");
    assert_snapshot!(chat.refused("U01APPROVER", "freeze again").await, @"Releases are already frozen by alice since 2026-11-25 09:11 UTC.");
    chat.done("alice", "unfreeze").await;
    assert_snapshot!(chat.refused("alice", "unfreeze").await, @"Releases are not frozen.");
    chat.done("alice", "freeze end of quarter").await;
    assert_snapshot!(chat.refused("bob", "dep start PAY-2").await, @"Releases of all services are frozen by alice since 2026-11-25 09:16 UTC: end of quarter");
}

#[test]
fn failed_tracker_checks() {
    let renderer = Renderer::plain(Some("https://tracker.example.com/browse/".into()));
    let refusal = Refusal::ChecksFailed {
        ticket: TicketKey::parse("PAY-1").unwrap(),
        failures: vec![
            CheckFailure::WikiLinkMissing,
            CheckFailure::StatusNotAllowed {
                status: "In Progress".into(),
                statuses: vec!["Ready for release".into(), "Done".into()],
                status_categories: vec!["done".into()],
            },
            CheckFailure::NoFixVersion,
            CheckFailure::NoAssignee,
            CheckFailure::IssueTypeNotAllowed {
                issue_type: "Epic".into(),
                allowed: vec!["Story".into(), "Bug".into()],
            },
            CheckFailure::LabelMissing {
                labels: vec!["release".into(), "hotfix".into()],
            },
        ],
    };
    assert_snapshot!(renderer.refusal(&refusal), @"
    PAY-1 is not ready to be requested:
    • a wiki or release-notes link (http or https) is missing
    • its status in the tracker is In Progress, not one of Ready for release, Done (nor in the category done)
    • it has no fix version in the tracker
    • nobody is assigned to it in the tracker
    • its type in the tracker is Epic, not one of Story, Bug
    • it has none of the labels release, hotfix in the tracker (one is enough)
    ");
    let not_asked = |failure: CheckFailure| {
        renderer.refusal(&Refusal::ChecksFailed {
            ticket: TicketKey::parse("PAY-1").unwrap(),
            failures: vec![failure],
        })
    };
    assert_snapshot!(not_asked(CheckFailure::TicketNotFound), @"
    PAY-1 is not ready to be requested:
    • the ticket is not in the tracker (or dobrobot's account may not see it)
    ");
    assert_snapshot!(not_asked(CheckFailure::TrackerUnavailable { reason: "no answer within 3s".into() }), @"
    PAY-1 is not ready to be requested:
    • the tracker could not be asked (no answer within 3s); requests are refused until it answers
    ");
    assert_snapshot!(not_asked(CheckFailure::TrackerMisconfigured { reason: "HTTP 401".into() }), @"
    PAY-1 is not ready to be requested:
    • configuration error, for the admins: the tracker refused dobrobot's credentials (HTTP 401); check [tracker] and its token
    ");
}

// --- queries ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_queue() {
    let chat = Chat::new().await;
    assert_snapshot!(chat.done("bob", "queue").await, @"The queue is empty.");

    // Deploying.
    chat.done(
        "bob",
        "dobro PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    )
    .await;
    chat.done("alice", "accept PAY-1").await;
    chat.done("bob", "dep start PAY-1").await;
    // Waiting for the conflict group lock.
    chat.done(
        "carol",
        "dobro API-1 https://wiki/y New endpoint no_need_admin",
    )
    .await;
    chat.done("alice", "accept API-1").await;
    // Waiting for approval, an admin and the billing lock.
    chat.done("dave", "dobro PAY-2 https://wiki/z Refunds")
        .await;
    // Ready to start, and one behind it waiting for its turn.
    chat.done(
        "erin",
        "dobro WEB-1 https://wiki/w services=web no_need_admin",
    )
    .await;
    chat.done("alice", "accept WEB-1").await;
    chat.done(
        "erin",
        "dobro WEB-2 https://wiki/v services=web no_need_admin",
    )
    .await;
    chat.done("alice", "accept WEB-2").await;
    // Waiting for the freeze to end.
    chat.done("alice", "freeze maintenance services=ops").await;
    chat.done(
        "frank",
        "dobro OPS-1 https://wiki/u services=ops no_need_admin",
    )
    .await;
    chat.done("alice", "accept OPS-1").await;
    // Waiting for an admin only.
    chat.done("bob", "dobro DB-1 https://wiki/t services=db")
        .await;
    chat.done("alice", "accept DB-1").await;

    assert_snapshot!(chat.done("bob", "queue").await, @"
    Release queue:
    • PAY-1 (billing) by bob — deploying now
    • API-1 (api) by carol — #2 in line, accepted, waiting for the backend-core group lock (held by PAY-1)
    • PAY-2 (billing) by dave — #3 in line, requested, waiting for approval, an admin, the billing lock (held by PAY-1) and its turn (after API-1, for the backend-core group)
    • WEB-1 (web) by erin — #1 in line, accepted, ready to start
    • WEB-2 (web) by erin — #2 in line, accepted, waiting for its turn (after WEB-1, for web)
    • OPS-1 (ops) by frank — #1 in line, accepted, waiting for the freeze to end
    • DB-1 (db) by bob — #1 in line, accepted, waiting for an admin
    ");
}

#[tokio::test]
async fn help_and_text_that_is_not_understood() {
    let chat = Chat::new().await;
    assert_snapshot!(chat.done("bob", "help").await, @"
    Commands:
    • dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]
    • queue
    • accept TICKET
    • reject TICKET <reason>
    • cancel TICKET
    • here TICKET
    • dep start TICKET
    • dep finish TICKET
    • dep rollback TICKET <reason>
    • dep alive TICKET [within=10m]
    • dep takeover TICKET [--force] <reason>
    • freeze <reason> [services=a,b]
    • unfreeze
    • who <service>
    • history [service=S] [ticket=T] [actor=U] [type=EventType]
    • suspects [at=TIME] [window=2h] [services=a,b]
    • help
    ");
    // Unknown, close to a command.
    assert_snapshot!(chat.invalid("bob", "acept PAY-1").await, @"I don't know `acept`. Did you mean `accept`? Usage: accept TICKET");
    assert_snapshot!(chat.invalid("bob", "dep strat PAY-1").await, @"I don't know `dep strat`. Did you mean `dep start`? Usage: dep start TICKET");
    // Unknown, close to nothing.
    assert_snapshot!(chat.invalid("bob", "make me a sandwich").await, @"
    I don't know `make`. Commands:
    • dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]
    • queue
    • accept TICKET
    • reject TICKET <reason>
    • cancel TICKET
    • here TICKET
    • dep start TICKET
    • dep finish TICKET
    • dep rollback TICKET <reason>
    • dep alive TICKET [within=10m]
    • dep takeover TICKET [--force] <reason>
    • freeze <reason> [services=a,b]
    • unfreeze
    • who <service>
    • history [service=S] [ticket=T] [actor=U] [type=EventType]
    • suspects [at=TIME] [window=2h] [services=a,b]
    • help
    ");
    // Empty, after the mention.
    assert_snapshot!(chat.invalid("bob", "<@U0BOT>").await, @"Say a command; `help` lists them.");
    // Missing arguments.
    assert_snapshot!(chat.invalid("bob", "accept").await, @"`accept` is missing the ticket; usage: accept TICKET");
    assert_snapshot!(chat.invalid("bob", "dep rollback PAY-1").await, @"`dep rollback` is missing a reason; usage: dep rollback TICKET <reason>");
    assert_snapshot!(chat.invalid("bob", "dep").await, @"`dep` is missing `start`, `finish`, `rollback`, `alive` or `takeover` and the ticket; usage: dep start|finish TICKET, dep rollback TICKET <reason>, dep alive TICKET [within=10m], dep takeover TICKET [--force] <reason>");
    assert_snapshot!(chat.invalid("bob", "who").await, @"`who` is missing the service; usage: who <service>");
    // Unexpected arguments.
    assert_snapshot!(chat.invalid("bob", "accept PAY-1 please").await, @"`accept` does not take `please`; usage: accept TICKET");
    assert_snapshot!(chat.invalid("bob", "history since=yesterday").await, @"`history` does not take `since=yesterday`; usage: history [service=S] [ticket=T] [actor=U] [type=EventType]");
    // A value that is not what it should be.
    assert_snapshot!(chat.invalid("bob", "dobro #bad https://x").await, @"`#bad` is not a ticket key (expected something like PAY-123); usage: dobro #TICKET <wiki link> <comment> [no_need_admin] [services=a,b]");
    assert_snapshot!(chat.invalid("bob", "who bill/ing").await, @"`bill/ing` is not a service name (letters, digits, `-`, `_`, `.`); usage: who <service>");
}

#[tokio::test]
async fn who_deployed_a_service() {
    let chat = Chat::new().await;
    assert_snapshot!(chat.done("bob", "who billing").await, @"Nobody has deployed billing.");

    chat.done(
        "bob",
        "dobro PAY-1 https://wiki/x Fix billing rounding no_need_admin",
    )
    .await;
    chat.done("alice", "accept PAY-1").await;
    chat.done("bob", "dep start PAY-1").await;
    chat.done("bob", "dep finish PAY-1").await;
    chat.done("carol", "dobro PAY-2 https://wiki/y Refunds no_need_admin")
        .await;
    chat.done("alice", "accept PAY-2").await;
    chat.done("carol", "dep start PAY-2").await;
    chat.done("oleg", "dep rollback PAY-2 error rate doubled")
        .await;
    chat.done("bob", "dobro PAY-3 https://wiki/z Invoices no_need_admin")
        .await;
    chat.done("alice", "accept PAY-3").await;
    chat.done("oleg", "dep start PAY-3").await;

    assert_snapshot!(chat.done("alice", "who billing").await, @"
    Deployments of billing, most recent first:
    • PAY-3 by oleg at 2026-11-25 09:10 UTC: deploying
    • PAY-2 by carol at 2026-11-25 09:06 UTC: rolled back
    • PAY-1 by bob at 2026-11-25 09:02 UTC: finished
    ");
}

#[tokio::test]
async fn history() {
    let chat = Chat::new().await;
    // Only the policy the app recorded when it started.
    assert_snapshot!(chat.done("bob", "history").await, @"
    History (1 event):
    #0 2026-11-25 08:59 UTC PolicyChanged - by dobrobot: `policy (start)`
    ");

    chat.done("bob", "dobro PAY-1 https://wiki/x Fix billing rounding")
        .await;
    chat.refused("bob", "accept PAY-1").await;
    chat.done("alice", "accept PAY-1").await;
    chat.done("oleg", "here PAY-1").await;
    chat.done("bob", "dep start PAY-1").await;
    chat.done(
        "carol",
        "dobro API-1 https://wiki/y New endpoint no_need_admin",
    )
    .await;
    chat.done("alice", "freeze incident INC-7").await;

    assert_snapshot!(chat.done("bob", "history").await, @"
    History (8 events):
    #0 2026-11-25 08:59 UTC PolicyChanged - by dobrobot: `policy (start)`
    #1 2026-11-25 09:00 UTC ReleaseRequested PAY-1 by bob: `dobro PAY-1 https://wiki/x Fix billing rounding`
    #2 2026-11-25 09:01 UTC CommandRefused PAY-1 by bob: `accept PAY-1`
    #3 2026-11-25 09:02 UTC ReleaseApproved PAY-1 by alice: `accept PAY-1`
    #4 2026-11-25 09:03 UTC AdminJoined PAY-1 by oleg: `here PAY-1`
    #5 2026-11-25 09:04 UTC DeploymentStarted PAY-1 by bob: `dep start PAY-1`
    #6 2026-11-25 09:05 UTC ReleaseRequested API-1 by carol: `dobro API-1 https://wiki/y New endpoint no_need_admin`
    #7 2026-11-25 09:06 UTC FreezeStarted - by alice: `freeze incident INC-7`
    ");
    assert_snapshot!(chat.done("bob", "history ticket=PAY-1 actor=bob").await, @"
    History (3 events):
    #1 2026-11-25 09:00 UTC ReleaseRequested PAY-1 by bob: `dobro PAY-1 https://wiki/x Fix billing rounding`
    #2 2026-11-25 09:01 UTC CommandRefused PAY-1 by bob: `accept PAY-1`
    #5 2026-11-25 09:04 UTC DeploymentStarted PAY-1 by bob: `dep start PAY-1`
    ");
    assert_snapshot!(chat.done("bob", "history service=api").await, @"
    History (2 events):
    #6 2026-11-25 09:05 UTC ReleaseRequested API-1 by carol: `dobro API-1 https://wiki/y New endpoint no_need_admin`
    #7 2026-11-25 09:06 UTC FreezeStarted - by alice: `freeze incident INC-7`
    ");
    assert_snapshot!(chat.done("bob", "history type=CommandRefused").await, @"
    History (1 event):
    #2 2026-11-25 09:01 UTC CommandRefused PAY-1 by bob: `accept PAY-1`
    ");
    assert_snapshot!(chat.done("bob", "history type=PolicyChanged").await, @"
    History (1 event):
    #0 2026-11-25 08:59 UTC PolicyChanged - by dobrobot: `policy (start)`
    ");
    assert_snapshot!(chat.done("bob", "history actor=nobody").await, @"No events match.");
}

#[tokio::test]
async fn a_long_history_shows_the_last_twenty() {
    let chat = Chat::new().await;
    for _ in 0..11 {
        chat.done("alice", "freeze drill").await;
        chat.done("alice", "unfreeze").await;
    }
    let reply = chat.done("bob", "history").await;
    // 22 commands and the policy the app recorded when it started.
    assert_snapshot!(reply.lines().next().unwrap(), @"History (23 events, the last 20 shown):");
    assert_eq!(reply.lines().count(), 21);
    assert!(reply.lines().nth(1).unwrap().starts_with("#3 "), "{reply}");
}

#[tokio::test]
async fn the_same_delivery_twice_is_recorded_once() {
    let chat = Chat::new().await;
    let text = "dobro PAY-1 https://wiki/x Fix billing rounding";
    let (kind, first) = chat.say("bob", text, Some("slack:Ev001")).await;
    assert_eq!(kind, ReplyKind::Done);
    assert!(first.starts_with("bob asks to release"), "{first}");
    let (kind, again) = chat.say("bob", text, Some("slack:Ev001")).await;
    assert_eq!(kind, ReplyKind::Done);
    assert_snapshot!(again, @"Already recorded: this message was delivered before.");

    // A refusal delivered twice is recorded once too.
    let (kind, _) = chat.say("bob", "accept PAY-1", Some("slack:Ev002")).await;
    assert_eq!(kind, ReplyKind::Refused);
    let (kind, again) = chat.say("bob", "accept PAY-1", Some("slack:Ev002")).await;
    assert_eq!(kind, ReplyKind::Done);
    assert_snapshot!(again, @"Already recorded: this message was delivered before.");

    assert_snapshot!(chat.done("bob", "history").await, @"
    History (3 events):
    #0 2026-11-25 08:59 UTC PolicyChanged - by dobrobot: `policy (start)`
    #1 2026-11-25 09:00 UTC ReleaseRequested PAY-1 by bob: `dobro PAY-1 https://wiki/x Fix billing rounding`
    #2 2026-11-25 09:02 UTC CommandRefused PAY-1 by bob: `accept PAY-1`
    ");
}
