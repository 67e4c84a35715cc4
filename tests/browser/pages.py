"""The pages in a real browser: headless Chromium driven by Playwright.

Run by tests/browser.rs, which starts the app as `serve` builds it on a known ledger and writes
what the pages must show (from the API and the CLI) to a plan file: the path is the one
argument. Prints each failed check and exits 1 if any failed; writes screenshots of the
timeline and the report.
"""

import json
import pathlib
import subprocess
import sys
import time
from datetime import datetime

from playwright.sync_api import sync_playwright

plan = json.loads(pathlib.Path(sys.argv[1]).read_text())
base = plan["base"]
failures = []

# Okabe-Ito, as the stylesheet has them.
COLOURS = {
    "running": "rgb(230, 159, 0)",
    "finished": "rgb(0, 158, 115)",
    "rolled_back": "rgb(213, 94, 0)",
    "waiting": "rgb(153, 153, 153)",
}


def check(condition, what):
    if not condition:
        failures.append(what)
    return condition


def ms(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def drawn(page, times=1):
    page.wait_for_function(
        f"Number(document.body.dataset.drawn || 0) >= {times}", timeout=15000
    )


BARS = """() => [...document.querySelectorAll('#lanes .bar')].map(b => ({
    key: b.dataset.key, ticket: b.dataset.ticket, service: b.dataset.service,
    kind: b.classList.contains('waiting') ? 'waiting' : 'deploy',
    outcome: b.dataset.outcome || null, suspect: b.classList.contains('suspect'),
    x: +b.getAttribute('x'), width: +b.getAttribute('width'),
    y: +b.getAttribute('y'), height: +b.getAttribute('height'),
    fill: getComputedStyle(b).fill, start: b.dataset.start, end: b.dataset.end }))"""

LANES = """() => Object.fromEntries([...document.querySelectorAll('#lanes .lane-band')]
    .filter(r => r.dataset.service).map(r => [r.dataset.service,
    [+r.getAttribute('y'), +r.getAttribute('height')]]))"""


def the_known_history(page):
    since, until = plan["range"]
    page.goto(f"{base}/?since={since}&until={until}")
    drawn(page)
    geometry = page.evaluate("() => ({...document.getElementById('lanes').dataset})")
    t0, t1 = ms(geometry["since"]), ms(geometry["until"])
    check(t0 == ms(since) and t1 == ms(until), f"the range shown: {geometry}")
    x0, plot = float(geometry["x0"]), float(geometry["plot"])

    def x(t):
        return x0 + (ms(t) - t0) / (t1 - t0) * plot

    bars = page.evaluate(BARS)
    lanes = page.evaluate(LANES)
    expected_deploy = 0
    for d in plan["deployments"]:
        ended = d.get("ended_at")
        for service in d["services"]:
            lane = lanes.get(service)
            if not check(lane is not None, f"a lane for {service}"):
                continue
            shown = {b["kind"]: b for b in bars if b["ticket"] == d["ticket"] and b["service"] == service}
            waiting = shown.get("waiting")
            wait_end = d.get("started_at") or ended
            if check(waiting is not None, f"{d['ticket']} on {service}: a waiting bar"):
                check(abs(waiting["x"] - x(d["requested_at"])) < 0.5,
                      f"{d['ticket']} waiting from {d['requested_at']}: x {waiting['x']} not {x(d['requested_at'])}")
                if wait_end:
                    check(abs(waiting["x"] + waiting["width"] - x(wait_end)) < 0.5 or waiting["width"] == 2,
                          f"{d['ticket']} waiting until {wait_end}")
                check(waiting["fill"] == COLOURS["waiting"], f"{d['ticket']} waiting colour {waiting['fill']}")
            if not d.get("started_at"):
                check("deploy" not in shown, f"{d['ticket']} never started, no deployment bar")
                continue
            expected_deploy += 1
            bar = shown.get("deploy")
            if not check(bar is not None, f"{d['ticket']} on {service}: a deployment bar"):
                continue
            outcome = d["outcome"] or "running"
            check(bar["outcome"] == outcome, f"{d['ticket']}: outcome {bar['outcome']} not {outcome}")
            check(bar["fill"] == COLOURS[outcome], f"{d['ticket']}: colour {bar['fill']} for {outcome}")
            check(abs(bar["x"] - x(d["started_at"])) < 0.5,
                  f"{d['ticket']} starts at x {bar['x']}, not {x(d['started_at'])}")
            if ended:
                check(abs(bar["x"] + bar["width"] - x(ended)) < 0.5,
                      f"{d['ticket']} ends at x {bar['x'] + bar['width']}, not {x(ended)}")
            check(lane[0] <= bar["y"] and bar["y"] + bar["height"] <= lane[0] + lane[1],
                  f"{d['ticket']}'s bar in {service}'s lane")
    deploy_bars = [b for b in bars if b["kind"] == "deploy"]
    check(len(deploy_bars) == expected_deploy,
          f"{len(deploy_bars)} deployment bars, not {expected_deploy}")
    refused = page.evaluate("() => document.querySelectorAll('#lanes .mark.refused').length")
    check(refused == plan["refused"], f"{refused} refusal marks, not {plan['refused']}")
    lines = page.evaluate("() => [...document.querySelectorAll('#lanes .rule-change')].map(l => +l.getAttribute('x1'))")
    check(len(lines) == len(plan["rule_changes"]), f"{len(lines)} rule changes drawn, not {len(plan['rule_changes'])}")
    for line, at in zip(sorted(lines), sorted(plan["rule_changes"])):
        check(abs(line - x(at)) < 0.5, f"the rule change of {at} at x {line}, not {x(at)}")


def a_ticket_story(page):
    story = plan["story"]
    page.click(f'#lanes .bar.deploy[data-ticket="{story["ticket"]}"]')
    page.wait_for_function(
        "document.querySelectorAll('#story-events li[data-revision]').length > 0", timeout=10000
    )
    revisions = page.eval_on_selector_all(
        "#story-events li[data-revision]", "els => els.map(e => Number(e.dataset.revision))"
    )
    check(revisions == story["revisions"], f"the story lists {revisions}, not {story['revisions']}")
    text = page.inner_text("#story")
    for expected in story["says"]:
        check(expected in text, f"the story says {expected!r}: {text}")


def every_bar_by_keyboard(page):
    page.goto(page.url)
    drawn(page)
    keys = {b["key"] for b in page.evaluate(BARS)}
    reached = set()
    page.focus("#timeline")
    for _ in range(len(keys) + 40):
        page.keyboard.press("Tab")
        key = page.evaluate("() => document.activeElement && document.activeElement.dataset && document.activeElement.dataset.key")
        if key:
            reached.add(key)
        if reached == keys:
            break
    check(reached == keys, f"Tab reaches every bar: missing {sorted(keys - reached)}")
    # Enter on a focused bar opens its story.
    page.focus('#lanes .bar.deploy')
    page.keyboard.press("Enter")
    page.wait_for_selector("#story:not([hidden])", timeout=5000)


def an_incident_permalink(page):
    incident = plan["incident"]
    page.goto(f"{base}/?at={incident['at']}&window={incident['window']}")
    drawn(page)
    page.wait_for_function("document.getElementById('now-title').textContent.startsWith('At')")
    highlighted = sorted(set(page.eval_on_selector_all(
        "#lanes .bar.deploy.suspect", "els => els.map(e => e.dataset.ticket)")))
    check(highlighted == sorted(incident["suspects"]),
          f"highlighted {highlighted}, suspects --at lists {incident['suspects']}")
    listed = page.eval_on_selector_all("#suspects li[data-ticket]", "els => els.map(e => e.dataset.ticket)")
    check(listed == incident["suspects"], f"listed {listed}, suspects --at lists {incident['suspects']}")
    check(page.get_attribute("#permalink", "href") == page.url, "the permalink is the page's URL")
    locks = page.inner_text("#locks")
    for ticket in incident["locked_by"]:
        check(ticket in locks, f"the locks at that moment name {ticket}: {locks}")
    pathlib.Path(plan["screenshots"]).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=f"{plan['screenshots']}/timeline.png", full_page=True)


def the_report(page):
    page.goto(f"{base}/report?since=2026-03-02&until=2026-03-16")
    check(page.locator("#deployments rect.bar").count() > 0, "the report draws bars")
    page.screenshot(path=f"{plan['screenshots']}/report.png", full_page=True)


def what_if_marks(page):
    """The /what-if form posted with other rules: each difference the CLI reports is listed in
    order and marked on the lanes."""
    w = plan["what_if"]
    page.goto(f"{base}/what-if")
    page.fill("textarea[name=policy]", w["policy"])
    page.fill("input[name=since]", w["since"])
    page.fill("input[name=until]", w["until"])
    page.click("#what-if-form button")
    drawn(page)
    listed = page.evaluate("() => [...document.querySelectorAll('#what-if-list li')].map(li => li.dataset.kind)")
    check(listed == w["kinds"], f"what-if lists {listed}, not {w['kinds']}")
    marked = page.evaluate("() => [...new Set([...document.querySelectorAll('#lanes .mark.what-if')].map(m => m.dataset.kind))]")
    check(sorted(marked) == sorted(set(w["kinds"])), f"what-if marks {marked}, not {w['kinds']}")


def a_command_appears_live(page):
    page.goto(f"{base}/")
    drawn(page)
    # The page has its first `ledger` event before the command is recorded.
    page.wait_for_function("document.getElementById('status').textContent.includes(' release')")
    time.sleep(0.3)
    cli = plan["cli"]
    started = time.monotonic()
    subprocess.run(cli["command"] + ["chat", "--as", "bob", f"dobro #{cli['ticket']} https://wiki/live live"],
                   check=True, env=cli["env"], capture_output=True)
    try:
        page.wait_for_selector(f'#lanes .bar[data-ticket="{cli["ticket"]}"]', timeout=10000)
        print(f"a command recorded through the CLI was drawn {time.monotonic() - started:.2f} s later")
    except Exception as error:  # noqa: BLE001 - reported as a failed check
        check(False, f"{cli['ticket']} never appeared: {error}")
    page.wait_for_function(
        f"document.getElementById('queue').textContent.includes('{cli['ticket']}')", timeout=10000
    )


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=plan["chromium"],
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} for {r.url}") if r.status >= 400 else None)
    for step in (the_known_history, a_ticket_story, every_bar_by_keyboard, an_incident_permalink,
                 the_report, what_if_marks, a_command_appears_live):
        try:
            step(page)
        except Exception as error:  # noqa: BLE001 - a step that cannot go on is a failure
            failures.append(f"{step.__name__}: {error}")
    check(not errors, f"console errors: {errors}")
    browser.close()

for failure in failures:
    print("FAILED:", failure)
sys.exit(1 if failures else 0)
