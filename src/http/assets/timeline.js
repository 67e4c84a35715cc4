// The timeline page: the releases of a range as swimlanes, one per service, drawn in SVG from
// the read API (/api/v1/...), which pages what it sends, so the page reads only its range. It
// follows the ledger through server-sent events (/live) and reloads its range when the read
// models move on. What it shows (the range, the filters, the lanes) comes from the server in
// #setup; the range and the filters are in the URL, so a view is a permalink.
"use strict";
(() => {
  const setup = JSON.parse(document.getElementById("setup").textContent);
  const filters = setup.filters;
  const svg = document.getElementById("lanes");
  const NS = "http://www.w3.org/2000/svg";
  const LABEL = 150; // the lane labels' column
  const AXIS = 26;
  // A lane: a thin bar for the wait above the deployment's bar.
  const LANE = 32;
  const BAR = 18;
  const THIN = 6;
  const RIGHT = 12;
  const MIN_SPAN = 5 * 60 * 1000;
  const MAX_SPAN = 31 * 86400 * 1000;
  const STEPS = [1, 5, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60000);

  const state = {
    since: Date.parse(setup.since),
    until: Date.parse(setup.until),
    live: setup.live,
    at: setup.at ? Date.parse(setup.at) : null,
    deployments: [],
    history: [],
    freezeAtStart: null,
    suspects: [],
    locks: [],
    revision: null,
    selected: null,
    focused: null,
    loaded: false,
  };

  const $ = (id) => document.getElementById(id);
  const iso = (ms) => new Date(ms).toISOString();
  const when = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

  function element(name, attributes = {}, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function html(name, text, attributes = {}) {
    const node = document.createElement(name);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function status(text, error = false) {
    const node = $("status");
    node.textContent = text;
    node.classList.toggle("error", error);
  }

  // --- Asking the API -------------------------------------------------------------------

  async function api(path, query = {}) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query)) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.append(k, v);
    }
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        // not a problem document
      }
      throw new Error(`${url.pathname}: ${response.status} ${detail}`);
    }
    return response.json();
  }

  // Every page of a listing, following its cursor.
  async function every(path, query) {
    const items = [];
    let cursor = null;
    for (;;) {
      const page = await api(path, { ...query, limit: 1000, cursor });
      items.push(...page.items);
      if (page.next_cursor === null || page.next_cursor === undefined) return items;
      cursor = page.next_cursor;
    }
  }

  function took_part(item, actor) {
    return [item.requester, item.approver, item.admin].includes(actor);
  }

  let loading = 0;
  async function load() {
    const mine = ++loading;
    status("Loading…");
    const range = { since: iso(state.since), until: iso(state.until) };
    const wanted = { service: filters.service, ticket: filters.ticket, actor: filters.actor };
    try {
      const [deployments, history, freeze] = await Promise.all([
        every("/api/v1/deployments", { ...range, ...wanted, outcome: filters.outcome }),
        every("/api/v1/history", { ...range, ...wanted }),
        api("/api/v1/freeze", { at: range.since }),
      ]);
      // Requests open now whose last step came before the range still wait in it.
      if (state.live && (!filters.outcome || filters.outcome === "open")) {
        const queue = (await api("/api/v1/queue")).items;
        const shown = new Set(deployments.filter((d) => d.outcome === null).map((d) => d.ticket));
        for (const item of queue) {
          if (shown.has(item.ticket)) continue;
          if (filters.ticket && item.ticket !== filters.ticket) continue;
          if (filters.service && !item.services.includes(filters.service)) continue;
          if (filters.actor && !took_part(item, filters.actor)) continue;
          const page = await api("/api/v1/deployments", { ticket: item.ticket, outcome: "open" });
          deployments.push(...page.items);
        }
      }
      let suspects = [];
      if (state.at !== null) {
        suspects = await every("/api/v1/suspects", {
          at: iso(state.at),
          window: `${setup.window_secs}s`,
          service: filters.service,
        });
      }
      if (mine !== loading) return;
      Object.assign(state, { deployments, history, freezeAtStart: freeze, suspects, loaded: true });
      draw();
      incident();
      performance.mark("timeline-drawn");
      document.body.dataset.drawn = String(Number(document.body.dataset.drawn || 0) + 1);
      const n = deployments.length;
      status(`${n} release${n === 1 ? "" : "s"}, as of ${new Date().toISOString().slice(11, 19)} UTC`);
    } catch (error) {
      if (mine === loading) status(error.message, true);
    }
    await panel();
  }

  let timer = null;
  function loadSoon(delay = 250) {
    clearTimeout(timer);
    timer = setTimeout(load, delay);
  }

  // --- The "now" panel, or the moment of an incident --------------------------------------

  function waiting(item) {
    if (!item.waiting_for.length) return item.status === "deploying" ? "deploying now" : "ready to start";
    return item.waiting_for
      .map((w) => {
        switch (w.kind) {
          case "approval":
            return "waiting for approval";
          case "admin":
            return "waiting for an admin";
          case "freeze":
            return "waiting for the freeze to end";
          case "lock":
            return `waiting for the ${w.lock.name} ${w.lock.kind} lock (held by ${w.ticket})`;
          case "turn":
            return `after ${w.ahead} (${w.over.name} ${w.over.kind})`;
          default:
            return w.kind;
        }
      })
      .join(", ");
  }

  function age(since, reference) {
    const minutes = Math.max(0, Math.floor((reference - Date.parse(since)) / 60000));
    if (minutes < 60) return `${minutes} min`;
    if (minutes < 1440) return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
    return `${Math.floor(minutes / 1440)} d ${Math.floor(minutes / 60) % 24} h`;
  }

  async function panel() {
    try {
      let queue;
      let locks;
      let reference = Date.now();
      if (state.at !== null) {
        const then = await api("/api/v1/replay", { at: iso(state.at) });
        queue = then.queue;
        locks = then.locks;
        reference = state.at;
        $("now-title").textContent = `At ${when(state.at)}`;
      } else {
        queue = (await api("/api/v1/queue")).items;
        locks = (await api("/api/v1/locks")).items;
        $("now-title").textContent = "Now";
      }
      const list = $("queue");
      list.replaceChildren();
      for (const item of queue) {
        const li = html("li", `#${item.position} ${item.ticket} (${item.services.join(", ")}) by ${item.requester}: ${waiting(item)}`);
        li.dataset.ticket = item.ticket;
        list.append(li);
      }
      if (!queue.length) list.append(html("li", "nobody is waiting", { class: "muted" }));
      const held = $("locks");
      held.replaceChildren();
      for (const lock of locks) {
        const li = html("li", `${lock.lock.kind} ${lock.lock.name}: ${lock.ticket} by ${lock.by}, for ${age(lock.since, reference)}`);
        li.dataset.ticket = lock.ticket;
        held.append(li);
      }
      if (!locks.length) held.append(html("li", "no lock is held", { class: "muted" }));
      state.locks = locks;
      drawLocks();
    } catch (error) {
      status(error.message, true);
    }
  }

  // --- Drawing ---------------------------------------------------------------------------

  function lanes() {
    const shown = setup.lanes.slice();
    const known = new Set(shown.map((l) => l.service));
    for (const d of state.deployments) {
      for (const s of d.services) {
        if (!known.has(s)) {
          known.add(s);
          shown.push({ service: s, group: null });
        }
      }
    }
    return filters.service ? shown.filter((l) => l.service === filters.service) : shown;
  }

  let geometry = null;

  function draw() {
    const width = Math.max(svg.parentElement.clientWidth, 480);
    const shown = lanes();
    const height = AXIS + (shown.length + 1) * LANE + 4;
    const plot = width - LABEL - RIGHT;
    const x = (ms) => LABEL + ((ms - state.since) / (state.until - state.since)) * plot;
    geometry = { width, plot, x, lanes: new Map() };
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", height);
    Object.assign(svg.dataset, { since: iso(state.since), until: iso(state.until), x0: LABEL, plot });
    svg.replaceChildren();

    const defs = element("defs");
    const clip = element("clipPath", { id: "plot-area" });
    clip.append(element("rect", { x: LABEL, y: 0, width: plot, height }));
    defs.append(clip);
    svg.append(defs);

    // Lanes, those of a conflict group together, the group named above its first lane.
    let group = undefined;
    shown.forEach((lane, i) => {
      const y = AXIS + i * LANE;
      geometry.lanes.set(lane.service, y);
      svg.append(element("rect", { class: `lane-band${i % 2 ? " odd" : ""}`, x: 0, y, width, height: LANE, "data-service": lane.service }));
      const label = element("text", { class: "lane-label", x: 6, y: y + LANE / 2 + 8 }, lane.service);
      svg.append(label);
      if (lane.group !== group && lane.group) {
        svg.append(element("text", { class: "group-label", x: 6, y: y + 10 }, lane.group));
      }
      group = lane.group;
    });
    const otherY = AXIS + shown.length * LANE;
    svg.append(element("rect", { class: "lane-band", x: 0, y: otherY, width, height: LANE, "data-service": "" }));
    svg.append(element("text", { class: "lane-label muted", x: 6, y: otherY + LANE / 2 + 4 }, "(no service)"));

    // The time axis, in UTC.
    const span = state.until - state.since;
    const step = STEPS.find((s) => (plot / span) * s >= 80) || STEPS[STEPS.length - 1];
    for (let t = Math.ceil(state.since / step) * step; t <= state.until; t += step) {
      svg.append(element("line", { class: "tick", x1: x(t), x2: x(t), y1: AXIS - 4, y2: height }));
      const d = new Date(t);
      const label = t % 86400000 === 0 || step >= 86400000
        ? d.toISOString().slice(5, 10)
        : d.toISOString().slice(11, 16);
      svg.append(element("text", { x: x(t), y: AXIS - 8, "text-anchor": "middle" }, label));
    }

    const area = element("g", { "clip-path": "url(#plot-area)" });
    svg.append(area);
    freezes(area, shown, x);
    if (state.at !== null) {
      const from = state.at - setup.window_secs * 1000;
      area.append(element("rect", { class: "incident-window", x: x(from), y: AXIS, width: Math.max(0, x(state.at) - x(from)), height: height - AXIS }));
      area.append(element("line", { class: "incident-line", x1: x(state.at), x2: x(state.at), y1: AXIS - 4, y2: height }));
    }
    bars(area, x);
    marks(area, x, otherY);
    ruleChanges(area, x, height);
    whatIfMarks(area, x, otherY);
    const now = Date.now();
    if (now >= state.since && now <= state.until) {
      area.append(element("line", { class: "now-line", x1: x(now), x2: x(now), y1: AXIS - 4, y2: height }));
    }
    drawLocks();
    $("range").textContent = `${when(state.since)} to ${when(state.until)}${state.live ? " (following)" : ""}`;
    if (state.focused) {
      const again = svg.querySelector(`.bar[data-key="${CSS.escape(state.focused)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function freezes(area, shown, x) {
    const spans = [];
    let current = null;
    const start = state.freezeAtStart;
    if (start && start.frozen) {
      current = { from: state.since, services: start.services, by: start.by, reason: start.reason };
    }
    for (const e of state.history) {
      const t = Date.parse(e.recorded_at);
      if (e.event_type === "FreezeStarted") {
        if (current) spans.push({ ...current, to: t });
        current = { from: t, services: e.event.data.services, by: e.actor_name, reason: e.event.data.reason };
      } else if (e.event_type === "FreezeEnded" && current) {
        spans.push({ ...current, to: t });
        current = null;
      }
    }
    if (current) spans.push({ ...current, to: Math.min(state.until, Date.now()) });
    for (const f of spans) {
      const covered = f.services ? shown.filter((l) => f.services.includes(l.service)) : shown;
      for (const lane of covered) {
        const y = geometry.lanes.get(lane.service);
        const rect = element("rect", { class: "freeze", x: x(f.from), y, width: Math.max(1, x(f.to) - x(f.from)), height: LANE, "data-service": lane.service });
        rect.append(element("title", {}, `Frozen by ${f.by} from ${when(f.from)}: ${f.reason}`));
        area.append(rect);
      }
    }
  }

  function bars(area, x) {
    const now = Date.now();
    const suspects = new Set(state.suspects.map((s) => s.revision));
    for (const d of state.deployments) {
      const requested = Date.parse(d.requested_at);
      const started = d.started_at ? Date.parse(d.started_at) : null;
      const ended = d.ended_at ? Date.parse(d.ended_at) : d.finished_at ? Date.parse(d.finished_at) : null;
      const outcome = d.outcome === null ? (started !== null ? "running" : "waiting") : d.outcome;
      for (const service of d.services) {
        const y = geometry.lanes.get(service);
        if (y === undefined) continue;
        const waitEnd = started ?? ended ?? now;
        const waitWhat = d.outcome === null || started !== null ? "waiting" : `waiting, then ${d.outcome.replace("_", " ")}`;
        if (waitEnd > requested) {
          area.append(bar(d, service, "waiting", requested, started ?? ended, y + 2, THIN, x, waitWhat, suspects));
        }
        if (started !== null) {
          area.append(bar(d, service, outcome, started, ended, y + THIN + 4, BAR, x, outcome.replace("_", " "), suspects));
        }
      }
    }
  }

  function bar(d, service, kind, from, to, y, height, x, what, suspects) {
    const end = to ?? Date.now();
    const label = `${d.ticket} on ${service}: ${what}, ${when(from)} to ${to === null ? "now" : when(to)}`;
    const key = `${d.revision}/${service}/${kind === "waiting" ? "waiting" : "deploy"}`;
    const rect = element("rect", {
      class: `bar ${kind === "waiting" ? "waiting" : "deploy"}${suspects.has(d.revision) ? " suspect" : ""}${state.selected === d.revision ? " selected" : ""}`,
      x: x(from),
      y,
      width: Math.max(2, x(end) - x(from)),
      height,
      tabindex: 0,
      role: "button",
      "aria-label": label,
      "data-key": key,
      "data-ticket": d.ticket,
      "data-service": service,
      "data-revision": d.revision,
      "data-start": iso(from),
      "data-end": to === null ? "" : iso(to),
    });
    if (kind !== "waiting") rect.dataset.outcome = kind;
    rect.append(element("title", {}, label));
    rect.addEventListener("click", () => {
      if (!dragged) story(d);
    });
    rect.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        story(d);
      }
    });
    rect.addEventListener("focus", () => (state.focused = key));
    return rect;
  }

  function marks(area, x, otherY) {
    for (const e of state.history) {
      const refused = e.event_type === "CommandRefused";
      if (!refused && e.event_type !== "ReminderSent") continue;
      const t = x(Date.parse(e.recorded_at));
      const ys = e.services.map((s) => geometry.lanes.get(s)).filter((y) => y !== undefined);
      for (const y of ys.length ? ys : [otherY]) {
        let mark;
        if (refused) {
          const c = y + LANE / 2;
          mark = element("path", { class: "mark refused", d: `M${t - 4},${c - 4}L${t + 4},${c + 4}M${t - 4},${c + 4}L${t + 4},${c - 4}` });
          const why = e.event.data.refusal ? e.event.data.refusal.kind.replaceAll("_", " ") : "refused";
          mark.append(element("title", {}, `${when(Date.parse(e.recorded_at))} ${e.actor_name}: ${e.command} (refused: ${why})`));
        } else {
          mark = element("circle", { class: "mark reminder", cx: t, cy: y + 5, r: 3 });
          mark.append(element("title", {}, `${when(Date.parse(e.recorded_at))} reminder about ${e.ticket}`));
        }
        mark.dataset.revision = e.revision;
        area.append(mark);
      }
    }
  }

  // A change of the rules (PolicyChanged) is a dotted line across every lane, its changes in
  // its title: what a postmortem asks when a release was allowed under rules since changed.
  function ruleChanges(area, x, height) {
    for (const e of state.history) {
      if (e.event_type !== "PolicyChanged") continue;
      const at = Date.parse(e.recorded_at);
      const t = x(at);
      const data = e.event.data;
      const label = `${when(at)} rules changed (${data.cause}, ${data.host}): ${data.changes.join("; ")}`;
      const line = element("line", { class: "rule-change", x1: t, x2: t, y1: AXIS - 4, y2: height, tabindex: 0, role: "img", "aria-label": label, "data-revision": e.revision });
      line.append(element("title", {}, label));
      area.append(line);
    }
  }

  // On /what-if: each difference under the proposed rules, a diamond at its time on the lanes
  // of its ticket's services (those of its release in the range), listed beside the lanes too.
  function whatIfMarks(area, x, otherY) {
    if (!setup.what_if) return;
    for (const d of setup.what_if.differences) {
      const t = x(Date.parse(d.at));
      const services = new Set();
      for (const dep of state.deployments) {
        if (dep.ticket === d.ticket) dep.services.forEach((s) => services.add(s));
      }
      const ys = [...services].map((s) => geometry.lanes.get(s)).filter((y) => y !== undefined);
      for (const y of ys.length ? ys : [otherY]) {
        const c = y + LANE / 2;
        const mark = element("path", { class: `mark what-if ${d.kind}`, d: `M${t},${c - 6}L${t + 6},${c}L${t},${c + 6}L${t - 6},${c}Z`, "data-kind": d.kind, "data-ticket": d.ticket ?? "" });
        mark.append(element("title", {}, `${when(Date.parse(d.at))} ${d.ticket ?? ""}: ${d.detail}`));
        area.append(mark);
      }
    }
  }

  // The locks held (now, or at the incident's moment) beside their lanes' names.
  function drawLocks() {
    if (!geometry) return;
    for (const old of svg.querySelectorAll(".lock-label")) old.remove();
    for (const lock of state.locks) {
      const services =
        lock.lock.kind === "service"
          ? [lock.lock.name]
          : setup.lanes.filter((l) => l.group === lock.lock.name).map((l) => l.service);
      for (const service of services) {
        const y = geometry.lanes.get(service);
        if (y === undefined) continue;
        const text = element("text", { class: "lock-label", x: LABEL - 6, y: y + LANE / 2 + 4, "text-anchor": "end", "data-service": service }, `locked: ${lock.ticket}`);
        svg.append(text);
      }
    }
  }

  // --- A ticket's story ------------------------------------------------------------------

  function fact(list, term, value) {
    if (value === null || value === undefined || value === "") return;
    list.append(html("dt", term));
    const dd = html("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    list.append(dd);
  }

  function link(url, text) {
    const a = html("a", text || url, { href: url, rel: "noopener" });
    return a;
  }

  async function story(d) {
    state.selected = d.revision;
    for (const b of svg.querySelectorAll(".bar.selected")) b.classList.remove("selected");
    for (const b of svg.querySelectorAll(`.bar[data-revision="${d.revision}"]`)) b.classList.add("selected");
    const section = $("story");
    section.hidden = false;
    section.dataset.ticket = d.ticket;
    $("story-title").textContent = `${d.ticket}: ${d.outcome === null ? (d.started_at ? "running" : "open") : d.outcome.replace("_", " ")}`;
    const facts = $("story-facts");
    const events = $("story-events");
    facts.replaceChildren();
    events.replaceChildren(html("li", "Loading…", { class: "muted" }));
    try {
      const entries = (await every("/api/v1/history", { ticket: d.ticket })).filter(
        (e) => e.revision >= d.revision && e.revision <= d.last_revision,
      );
      const request = entries.find((e) => e.event_type === "ReleaseRequested");
      fact(facts, "Services", d.services.join(", "));
      fact(facts, "Requested by", `${d.requester}, ${when(Date.parse(d.requested_at))}`);
      if (request && request.event.data.comment) fact(facts, "Comment", request.event.data.comment);
      const tracked = request && request.event.data.tracker;
      if (tracked && tracked.outcome === "checked") {
        fact(facts, "Summary", tracked.summary);
        fact(facts, "Status in the tracker", tracked.status);
      } else if (tracked) {
        const why = tracked.cause === "misconfigured" ? "credentials refused" : "tracker unavailable";
        fact(facts, "Tracker", `not checked (${why}: ${tracked.reason}): ${tracked.checks.join(", ").replaceAll("_", " ")}`);
      }
      fact(facts, "Approver", d.approver);
      fact(facts, "Admin", d.admin);
      fact(facts, "Started by", d.started_by);
      fact(facts, "Ended by", d.ended_by);
      fact(facts, "Outcome", d.outcome === null ? "open" : d.outcome.replace("_", " "));
      fact(facts, "Reason", d.reason);
      if (request && request.event.data.wiki) fact(facts, "Release notes", link(request.event.data.wiki));
      if (setup.tracker_url) fact(facts, "Ticket", link(setup.tracker_url + d.ticket, d.ticket));
      events.replaceChildren();
      for (const e of entries) {
        const li = html("li");
        li.dataset.revision = e.revision;
        if (e.event_type === "CommandRefused") li.classList.add("refused");
        const why = e.event_type === "CommandRefused" ? ` (refused: ${e.event.data.refusal.kind.replaceAll("_", " ")})` : "";
        li.append(`${when(Date.parse(e.recorded_at))} ${e.event_type} by ${e.actor_name}${why} `);
        li.append(html("code", e.command));
        const hash = html("span", ` #${e.revision} ${e.hash.slice(0, 12)}`, { class: "hash", title: e.hash });
        li.append(hash);
        events.append(li);
      }
    } catch (error) {
      events.replaceChildren(html("li", error.message, { class: "refused" }));
    }
  }

  // --- Incident mode ---------------------------------------------------------------------

  function incident() {
    const section = $("incident");
    if (state.at === null) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const permalink = $("permalink");
    permalink.href = location.href;
    permalink.textContent = location.href;
    const list = $("suspects");
    list.replaceChildren();
    for (const s of state.suspects) {
      const li = html("li");
      li.dataset.ticket = s.ticket;
      const started = s.started_at ? when(Date.parse(s.started_at)) : "not started";
      const outcome = s.outcome === null ? "running" : s.outcome.replace("_", " ");
      const button = html("button", `${s.ticket}`, { type: "button" });
      button.addEventListener("click", () => {
        const target = svg.querySelector(`.bar.deploy[data-revision="${s.revision}"]`);
        if (target) target.focus();
        story(s);
      });
      li.append(button, ` ${s.services.join(", ")}, started by ${s.started_by} at ${started}, ${outcome}`);
      list.append(li);
    }
    if (!state.suspects.length) list.append(html("li", "nothing ran in the window", { class: "muted" }));
  }

  // --- Moving through time ---------------------------------------------------------------

  function url() {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    if (state.at !== null) {
      params.set("at", new Date(state.at).toISOString().slice(0, 16) + "Z");
      params.set("window", `${Math.round(setup.window_secs / 60)}m`);
    }
    if (!state.live) {
      params.set("since", iso(state.since));
      params.set("until", iso(state.until));
    }
    return `${location.pathname}?${params}`;
  }

  function setRange(since, until, reload = true) {
    state.since = since;
    state.until = until;
    state.live = false;
    history.replaceState(null, "", url());
    draw();
    if (state.at !== null) incident();
    if (reload) loadSoon();
  }

  function zoom(factor, centre = (state.since + state.until) / 2) {
    const span = state.until - state.since;
    const next = clamp(span * factor, MIN_SPAN, MAX_SPAN);
    const ratio = (centre - state.since) / span;
    const since = centre - next * ratio;
    setRange(since, since + next);
  }

  function pan(fraction) {
    const shift = (state.until - state.since) * fraction;
    setRange(state.since + shift, state.until + shift);
  }

  // The time under a pointer.
  function timeAt(clientX) {
    const box = svg.getBoundingClientRect();
    const px = ((clientX - box.left) / box.width) * geometry.width;
    return state.since + ((px - LABEL) / geometry.plot) * (state.until - state.since);
  }

  svg.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      zoom(e.deltaY > 0 ? 1.25 : 0.8, timeAt(e.clientX));
    },
    { passive: false },
  );

  // Dragging pans (mouse, pen or one finger); two fingers pinch to zoom.
  const pointers = new Map();
  let drag = null;
  let pinch = null;
  let dragged = false;
  svg.addEventListener("pointerdown", (e) => {
    pointers.set(e.pointerId, e.clientX);
    if (pointers.size === 1) {
      drag = { x: e.clientX, since: state.since, until: state.until, moved: false };
      dragged = false;
    } else if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { distance: Math.abs(a - b), centre: timeAt((a + b) / 2), since: state.since, until: state.until };
      drag = null;
    }
  });
  svg.addEventListener("pointermove", (e) => {
    if (!pointers.has(e.pointerId)) return;
    pointers.set(e.pointerId, e.clientX);
    if (pinch && pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const distance = Math.abs(a - b);
      if (distance < 10 || pinch.distance < 10) return;
      const span = clamp((pinch.until - pinch.since) * (pinch.distance / distance), MIN_SPAN, MAX_SPAN);
      const ratio = (pinch.centre - pinch.since) / (pinch.until - pinch.since);
      setRange(pinch.centre - span * ratio, pinch.centre - span * ratio + span, false);
    } else if (drag) {
      const dx = e.clientX - drag.x;
      if (!drag.moved && Math.abs(dx) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        dragged = true;
        svg.setPointerCapture(e.pointerId);
        svg.classList.add("dragging");
      }
      const box = svg.getBoundingClientRect();
      const shift = (dx / ((geometry.plot / geometry.width) * box.width)) * (drag.until - drag.since);
      setRange(drag.since - shift, drag.until - shift, false);
    }
  });
  const release = (e) => {
    pointers.delete(e.pointerId);
    if ((drag && drag.moved) || pinch) loadSoon();
    if (pointers.size === 0) {
      drag = null;
      pinch = null;
      svg.classList.remove("dragging");
      setTimeout(() => (dragged = false), 0);
    }
  };
  svg.addEventListener("pointerup", release);
  svg.addEventListener("pointercancel", release);

  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, select, textarea, button")) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "+" || e.key === "=") zoom(0.8);
    else if (e.key === "-" || e.key === "_") zoom(1.25);
    else if (e.key === "ArrowLeft") pan(-0.2);
    else if (e.key === "ArrowRight") pan(0.2);
    else if (e.key === "Escape") $("story").hidden = true;
    else return;
    e.preventDefault();
  });

  $("zoom-in").addEventListener("click", () => zoom(0.8));
  $("zoom-out").addEventListener("click", () => zoom(1.25));
  $("earlier").addEventListener("click", () => pan(-0.5));
  $("later").addEventListener("click", () => pan(0.5));
  $("to-now").addEventListener("click", () => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    location.assign(`${location.pathname}?${params}`);
  });
  $("story-close").addEventListener("click", () => ($("story").hidden = true));
  window.addEventListener("resize", () => draw());

  // --- Following the ledger --------------------------------------------------------------

  const source = new EventSource("/live");
  source.addEventListener("ledger", (e) => {
    const progress = JSON.parse(e.data);
    if (progress.revision === state.revision) return;
    const first = state.revision === null;
    state.revision = progress.revision;
    if (first) return;
    if (state.live) {
      const span = state.until - state.since;
      state.until = Date.now();
      state.since = state.until - span;
      loadSoon(100);
    } else {
      panel();
    }
  });
  source.addEventListener("error", () => status("not following the ledger: reconnecting…", true));
  source.addEventListener("open", () => {
    if ($("status").classList.contains("error")) status("following the ledger");
  });

  draw();
  load();
})();
