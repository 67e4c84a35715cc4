//! The deploy gate: `dobrobot deploy --as ACTOR TICKET -- <command>` for CI/CD jobs. It waits
//! until the ticket may start, records `dep start`, runs the command with its output passed
//! through, and records how it ended: `dep finish` on exit 0, `dep rollback` with the exit status
//! otherwise, and also when the job is cancelled (SIGTERM or SIGINT, forwarded to the command).
//! While the command runs it records a sign of life (`dep alive`) every `heartbeat`, promising
//! the next within three of them, so a runner that dies leaves its locks flagged stale within
//! minutes instead of holding them silently for hours. Its exit status is the command's.
//!
//! Waiting asks the queue (a read that records nothing), the same `waiting_for` that `dep start`
//! would be refused for, and tries `dep start` only once the queue says nothing is in the way:
//! a job waiting half an hour does not fill the ledger with refusals. Losing a race for the lock
//! after that costs one recorded refusal, and the gate waits again.
//!
//! Each command is sent with an idempotency key that is the same on a retry, so a request whose
//! answer was lost (a timeout, a restarted `serve`) is recorded once.

pub mod desk;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::FutureExt;
use tokio::process::Command;
use uuid::Uuid;

use crate::domain::{QueueItem, Refusal, ReleaseStatus, TicketKey};
use crate::render::Renderer;
use crate::reply::{CommandReply, Outcome};

pub use desk::{Desk, DeskError, Local, Remote};

/// Exit status when the command did not run because the ticket may not start yet (`--no-wait`)
/// or did not get to start within `--wait` (sysexits' EX_TEMPFAIL: try again later).
pub const EXIT_NOT_YET: u8 = 75;
/// Exit status when the command did not run because the ledger refused it for a reason waiting
/// does not cure (no open request, not the requester or an admin, already deploying).
pub const EXIT_REFUSED: u8 = 77;
/// Exit status when the ledger (or `serve`) could not be reached.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit status when the command could not be started (not found, not executable), as a shell's.
pub const EXIT_CANNOT_RUN: u8 = 127;

/// What to run, and how patiently.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ticket: TicketKey,
    /// How long to wait for the ticket's turn; `None`: not at all (`--no-wait`).
    pub wait: Option<Duration>,
    /// How often a sign of life is recorded while the command runs.
    pub heartbeat: Duration,
    /// How often the queue is asked while waiting.
    pub poll: Duration,
    /// After a cancelling signal, how long the command may take to stop before it is killed.
    pub grace: Duration,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// Runs the plan; the process's exit status. `say` prints the gate's own lines (to stderr: the
/// command's output has stdout).
pub async fn run(desk: &dyn Desk, plan: &Plan, renderer: &Renderer, say: &dyn Fn(&str)) -> u8 {
    let run = Uuid::now_v7().simple().to_string();
    let ticket = &plan.ticket;
    let mut signals = Signals::listen();
    if let Err(code) = start(desk, plan, &run, renderer, say, &mut signals).await {
        return code;
    }
    let command = describe(plan);
    // A signal that came while `dep start` was being recorded: the start is recorded, the
    // command never ran.
    if let Some(signal) = signals.next().now_or_never() {
        let reason = format!("job cancelled ({}) before {command} ran", signal.name());
        end(desk, plan, &run, &rollback(ticket, &reason), say).await;
        return 128 + signal.number() as u8;
    }
    // The first sign of life before the command runs: its locks say from the start when the
    // next is due.
    alive(desk, plan, &run, 0, say).await;
    // In a process group of its own, so that a cancelling signal (and the kill after the grace)
    // reaches everything it started, and a terminal's Ctrl-C reaches it once, through the gate.
    let mut child = match Command::new(&plan.program)
        .args(&plan.args)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            say(&format!("cannot run {command}: {error}"));
            let reason = format!("{command} could not be started: {error}");
            end(desk, plan, &run, &rollback(ticket, &reason), say).await;
            return EXIT_CANNOT_RUN;
        }
    };
    let group = child.id();
    let (stop_alive, stopped) = tokio::sync::watch::channel(false);
    let alive = keep_alive(desk, plan, &run, say, stopped);
    tokio::pin!(alive);
    let mut cancelled: Option<Caught> = None;
    let mut deadline = None;
    let status = loop {
        let grace_over = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.next() => {
                match cancelled {
                    None => {
                        say(&format!("{}: stopping {command}", signal.name()));
                        if let Some(group) = group {
                            signal.send_to_group(group);
                        }
                        cancelled = Some(signal);
                        deadline = Some(tokio::time::Instant::now() + plan.grace);
                    }
                    // A second signal: the job is being torn down; do not wait any longer.
                    Some(_) => {
                        say(&format!("{}: killing {command}", signal.name()));
                        kill_group(group);
                        deadline = None;
                    }
                }
            }
            () = grace_over => {
                say(&format!("{command} did not stop within {:?}: killing it", plan.grace));
                kill_group(group);
                deadline = None;
            }
            () = &mut alive => {}
        }
    };
    // A sign of life still in flight is recorded before the end, never after it (where it
    // would be refused: the deployment is over).
    let _ = stop_alive.send(true);
    alive.await;
    let (code, reason) = match (status, cancelled) {
        (Ok(status), None) if status.success() => (0, None),
        (status, cancelled) => {
            let how = match &status {
                Ok(status) => describe_status(status),
                Err(error) => format!("could not be waited for ({error})"),
            };
            match cancelled {
                // A cancelled job fails, whatever the command made of the signal.
                Some(signal) => (
                    128 + signal.number() as u8,
                    Some(format!(
                        "job cancelled ({}): {command} {how}",
                        signal.name()
                    )),
                ),
                None => (
                    exit_code(status.as_ref().ok()),
                    Some(format!("{command} {how}")),
                ),
            }
        }
    };
    let text = match &reason {
        None => format!("dep finish {ticket}"),
        Some(reason) => rollback(ticket, reason),
    };
    end(desk, plan, &run, &text, say).await;
    code
}

/// SIGKILL to the command's process group.
fn kill_group(group: Option<u32>) {
    if let Some(group) = group.and_then(|g| i32::try_from(g).ok()) {
        // SAFETY: kill(2) on our own child's process group (its pid, as `process_group(0)`
        // made it); a group already gone makes it fail with ESRCH, ignored.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// Waits for the ticket's turn and records `dep start`; the exit status if it did not start.
async fn start(
    desk: &dyn Desk,
    plan: &Plan,
    run: &str,
    renderer: &Renderer,
    say: &dyn Fn(&str),
    signals: &mut Signals,
) -> Result<(), u8> {
    let ticket = &plan.ticket;
    let since = Instant::now();
    let mut said = String::new();
    // A request just recorded through another replica may take a moment to reach the one asked.
    let mut unseen = 0;
    for attempt in 0.. {
        // Until `dep start` is sent, a cancelling signal ends the gate with nothing recorded.
        let asked = tokio::select! {
            asked = patiently(|| desk.queue(), say) => asked,
            signal = signals.next() => return Err(cancelled_before_start(ticket, signal, say)),
        };
        let items = match asked {
            Ok(items) => items,
            Err(error @ DeskError::Rejected(_)) => {
                say(&format!("cannot read the queue: {error}"));
                return Err(EXIT_REFUSED);
            }
            Err(error) => {
                say(&format!("cannot read the queue: {error}"));
                return Err(EXIT_UNAVAILABLE);
            }
        };
        let Some(item) = items.iter().find(|i| &i.ticket == ticket) else {
            unseen += 1;
            if unseen < UNSEEN_POLLS {
                tokio::time::sleep(plan.poll).await;
                continue;
            }
            say(&format!(
                "{ticket} has no open request: ask for it first (dobro {ticket} <release notes> <comment>)"
            ));
            return Err(EXIT_REFUSED);
        };
        if item.status == ReleaseStatus::Deploying {
            say(&format!(
                "{ticket} is already deploying: another job runs it"
            ));
            return Err(EXIT_REFUSED);
        }
        if item.waiting_for.is_empty() {
            // Sent to the end: once sent, the start may be recorded, and a gate that left now
            // would leave it holding the locks with nobody to end it.
            let text = format!("dep start {ticket}");
            let key = format!("{run}:start:{attempt}");
            let reply = match send(desk, &text, &key, say).await {
                Ok(reply) => reply,
                Err(code) => {
                    if code == EXIT_UNAVAILABLE {
                        say(&format!(
                            "`{text}` may have been recorded without its answer reaching here: \
                             check `queue`, and end it with `dep rollback {ticket} <reason>` if so"
                        ));
                    }
                    return Err(code);
                }
            };
            match started(&reply) {
                Ok(()) => {
                    say(&reply.text);
                    return Ok(());
                }
                // Another release got there between the queue's answer and ours.
                Err(Some(refusal)) if refusal.waiting_cures() => say(&reply.text),
                Err(_) => {
                    say(&reply.text);
                    return Err(EXIT_REFUSED);
                }
            }
        } else {
            let line = waiting_line(renderer, item);
            if line != said {
                say(&line);
                said = line;
            }
            let Some(wait) = plan.wait else {
                say("--no-wait: not starting");
                return Err(EXIT_NOT_YET);
            };
            if since.elapsed() >= wait {
                say(&format!("{ticket} did not get to start within {wait:?}"));
                return Err(EXIT_NOT_YET);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(plan.poll) => {}
            signal = signals.next() => return Err(cancelled_before_start(ticket, signal, say)),
        }
    }
    unreachable!("the loop returns")
}

/// How many polls a ticket may be missing from the queue before the gate says it has no request.
const UNSEEN_POLLS: u32 = 3;

fn cancelled_before_start(ticket: &TicketKey, signal: Caught, say: &dyn Fn(&str)) -> u8 {
    say(&format!(
        "{} before {ticket} started: nothing recorded",
        signal.name()
    ));
    128 + signal.number() as u8
}

/// Whether a `dep start` reply means the deployment runs: accepted, or recorded by an earlier
/// try of this same request whose answer was lost. Otherwise its refusal, if it has one.
fn started(reply: &CommandReply) -> Result<(), Option<&Refusal>> {
    match reply.outcome {
        Outcome::Accepted => Ok(()),
        Outcome::AlreadyRecorded if reply.status == Some(ReleaseStatus::Deploying) => Ok(()),
        _ => Err(reply.refusal.as_ref()),
    }
}

fn waiting_line(renderer: &Renderer, item: &QueueItem) -> String {
    format!("waiting: {}", renderer.queue_item(item))
}

/// Records a sign of life every `heartbeat` (the first was recorded before the command ran),
/// until `stop` says so; a beat under way is finished first.
async fn keep_alive(
    desk: &dyn Desk,
    plan: &Plan,
    run: &str,
    say: &dyn Fn(&str),
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    for beat in 1u64.. {
        tokio::select! {
            () = tokio::time::sleep(plan.heartbeat) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        alive(desk, plan, run, beat, say).await;
    }
}

/// Records one sign of life, promising the next within three heartbeats.
async fn alive(desk: &dyn Desk, plan: &Plan, run: &str, beat: u64, say: &dyn Fn(&str)) {
    let within = (plan.heartbeat * 3).as_secs().max(1);
    let text = format!("dep alive {} within={within}s", plan.ticket);
    let key = format!("{run}:alive:{beat}");
    match desk.command(&text, &key).await {
        Ok(reply) if reply.outcome == Outcome::Accepted => {}
        Ok(reply) => say(&format!("sign of life not recorded: {}", reply.text)),
        Err(error) => say(&format!("sign of life not recorded: {error}")),
    }
}

/// Records how the deployment ended, retrying while the ledger cannot be reached.
async fn end(desk: &dyn Desk, plan: &Plan, run: &str, text: &str, say: &dyn Fn(&str)) {
    let key = format!("{run}:end");
    match send(desk, text, &key, say).await {
        Ok(reply) => say(&reply.text),
        Err(_) => say(&format!(
            "could not record `{text}`: the deployment of {} still holds its locks; record it by hand",
            plan.ticket
        )),
    }
}

/// Sends a command, retrying the same idempotency key while the desk cannot be reached or the
/// ledger did not record it; the exit status if it gave up.
async fn send(
    desk: &dyn Desk,
    text: &str,
    key: &str,
    say: &dyn Fn(&str),
) -> Result<CommandReply, u8> {
    let mut pauses = pauses();
    loop {
        let failure = match desk.command(text, key).await {
            Ok(reply) if reply.outcome == Outcome::NotRecorded => reply.text,
            Ok(reply) if reply.outcome == Outcome::NotUnderstood => {
                say(&reply.text);
                return Err(2);
            }
            Ok(reply) => return Ok(reply),
            Err(DeskError::Rejected(reason)) => {
                say(&format!("`{text}` not recorded: {reason}"));
                return Err(EXIT_REFUSED);
            }
            Err(DeskError::Unavailable(reason)) => reason,
        };
        match pauses.next() {
            Some(pause) => {
                say(&format!("`{text}` not recorded ({failure}); trying again"));
                tokio::time::sleep(pause).await;
            }
            None => {
                say(&format!("`{text}` not recorded: {failure}"));
                return Err(EXIT_UNAVAILABLE);
            }
        }
    }
}

/// A read retried while the desk cannot be reached.
async fn patiently<T, F, Fut>(mut ask: F, say: &dyn Fn(&str)) -> Result<T, DeskError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DeskError>>,
{
    let mut pauses = pauses();
    loop {
        match ask().await {
            Err(DeskError::Unavailable(reason)) => match pauses.next() {
                Some(pause) => {
                    say(&format!("{reason}; trying again"));
                    tokio::time::sleep(pause).await;
                }
                None => return Err(DeskError::Unavailable(reason)),
            },
            other => return other,
        }
    }
}

/// Half a second, doubling to ten, for about two minutes in all.
fn pauses() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .with_max_times(16)
        .build()
}

fn rollback(ticket: &TicketKey, reason: &str) -> String {
    format!("dep rollback {ticket} {reason}")
}

/// The command as the ledger names it in a reason: its program, without its arguments, which
/// may hold secrets (`--token=...`) that an append-only ledger, Slack and the release markers
/// would keep for good.
fn describe(plan: &Plan) -> String {
    let program = plan.program.to_string_lossy();
    let short: String = program.chars().take(120).collect();
    format!("`{short}`")
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    }
}

/// The command's exit status as a shell reports it: its code, or 128 + the signal that ended it.
fn exit_code(status: Option<&std::process::ExitStatus>) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => code as u8,
            (None, Some(signal)) => 128u8.saturating_add(signal as u8),
            (None, None) => 1,
        },
        None => 1,
    }
}

/// SIGTERM (a cancelled CI job, `docker stop`) and SIGINT (Ctrl-C), listened for from the start.
struct Signals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

#[derive(Debug, Clone, Copy)]
enum Caught {
    Terminate,
    Interrupt,
}

impl Caught {
    fn name(self) -> &'static str {
        match self {
            Caught::Terminate => "SIGTERM",
            Caught::Interrupt => "SIGINT",
        }
    }

    fn number(self) -> i32 {
        match self {
            Caught::Terminate => libc::SIGTERM,
            Caught::Interrupt => libc::SIGINT,
        }
    }

    /// Passes the signal on to the command's process group.
    fn send_to_group(self, group: u32) {
        if let Ok(group) = i32::try_from(group) {
            // SAFETY: kill(2) on our own child's process group with a valid signal number has
            // no memory effects; a group already gone makes it fail with ESRCH, ignored.
            unsafe {
                libc::kill(-group, self.number());
            }
        }
    }
}

impl Signals {
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            terminate: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn next(&mut self) -> Caught {
        async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = one(&mut self.terminate) => Caught::Terminate,
            () = one(&mut self.interrupt) => Caught::Interrupt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_reads_the_exit_status_it_knows() {
        use std::os::unix::process::ExitStatusExt;
        let exited = std::process::ExitStatus::from_raw(3 << 8);
        let killed = std::process::ExitStatus::from_raw(libc::SIGTERM);
        assert_eq!(exit_code(Some(&exited)), 3);
        assert_eq!(exit_code(Some(&killed)), 143);
        assert_eq!(describe_status(&exited), "exited with status 3");
        assert_eq!(describe_status(&killed), "was killed by signal 15");
    }
}
