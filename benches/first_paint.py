"""(f) of `cargo bench --bench ledger`: the timeline's first paint of a range, in headless
Chromium driven by Playwright. Arguments: the serve's address, the range's since and until
(RFC 3339), how many rounds, and Chromium's path. Each round opens a fresh page and reads the
time from the navigation's start to the page's `timeline-drawn` mark (the range's bars drawn
from the API's answers); prints one JSON line: the times in ms and the number of bars.
"""

import json
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

base, since, until, rounds, chromium = sys.argv[1:6]
query = urllib.parse.urlencode({"since": since, "until": until})
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )
    times = []
    bars = 0
    for _ in range(int(rounds)):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/?{query}")
        page.wait_for_function("Number(document.body.dataset.drawn || 0) >= 1", timeout=60000)
        times.append(page.evaluate("performance.getEntriesByName('timeline-drawn')[0].startTime"))
        bars = page.evaluate("document.querySelectorAll('#lanes .bar').length")
        page.close()
    browser.close()
print(json.dumps({"ms": times, "bars": bars}))
