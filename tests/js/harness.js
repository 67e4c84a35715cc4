#!/usr/bin/env node
// Runs an EventStoreDB user-defined projection (projections/*.js) under plain Node, for tests.
//
//   node tests/js/harness.js PROJECTION.js EVENTS.jsonl [--emit] [--every]
//
// EVENTS.jsonl has one event per line, in the order of the stream:
//   {"stream": "...", "revision": 0, "id": "...", "type": "ReleaseRequested",
//    "data": {...}, "metadata": {...}}
// Prints one JSON document: the final `state`, the `result` (the state through transformBy /
// filterBy, when the projection outputs its state), the `links` (linkTo) and `emitted` (emit)
// events in order, and with --every the state and result after each event handled.
//
// It follows the projection runtime of EventStoreDB/KurrentDB (JintProjectionStateHandler and
// the user-defined projections docs) as far as our projections need it:
//   - The script runs once to define the projection: `options`, `fromStream`, `fromStreams`,
//     `fromAll` are globals then, and each step of the chain offers only the calls the server
//     allows after it (`when` then `transformBy`/`filterBy`/`outputState`/`outputTo`, ...).
//     Afterwards those globals are gone, and `linkTo`, `emit`, `linkStreamTo`, `log` exist.
//   - `$init()` gives the first state (`{}` without one). An event goes to the handler of its
//     type, else to `$any`; with neither it is not delivered. A handler's return value is the
//     new state, unless it returns undefined, which keeps the (possibly mutated) state.
//   - The event has streamId, eventType, eventId, sequenceNumber, isJson, bodyRaw, body and
//     data (the same parsed object), metadataRaw, metadata, partition ("") and category ("").
//   - `linkTo(stream, event[, metadata])` needs the event's sequenceNumber and streamId and
//     writes a `$>` event whose data is `N@stream`. linkTo and emit need the projection's emit
//     option (--emit here); without it the server faults the projection, and so do we.
//   - The state is kept as JSON between events (the server checkpoints it as JSON and may
//     reload it), so a state that does not survive JSON is caught here.
// Not supported (our projections do not use them): partitionBy, foreachStream, fromCategory,
// bi-state, $deleted, $created. Using one is an error.

"use strict";

const fs = require("fs");
const vm = require("vm");

function fail(message) {
  process.stderr.write("harness: " + message + "\n");
  process.exit(2);
}

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith("--")));
const files = args.filter((a) => !a.startsWith("--"));
for (const flag of flags) {
  if (flag !== "--emit" && flag !== "--every") fail("unknown flag " + flag);
}
if (files.length !== 2) {
  fail("usage: node tests/js/harness.js PROJECTION.js EVENTS.jsonl [--emit] [--every]");
}
const [projectionFile, eventsFile] = files;
const emitEnabled = flags.has("--emit");
const every = flags.has("--every");

// ---- Definition: run the script with the selector API and record what it declares.

const definition = {
  streams: null, // null: every stream (fromAll)
  handlers: {},
  init: null,
  any: null,
  transforms: [], // [kind, fn], kind "transform" or "filter"
  outputState: false,
  options: {},
};

// What the server offers after each step (JintProjectionStateHandler._availableProperties).
const AVAILABLE = {
  fromStream: ["when", "partitionBy", "outputState"],
  fromStreams: ["when", "partitionBy", "outputState"],
  fromAll: ["when", "partitionBy", "outputState", "foreachStream"],
  when: ["transformBy", "filterBy", "outputState", "outputTo", "$defines_state_transform"],
  outputState: ["transformBy", "filterBy", "outputTo"],
  transformBy: ["transformBy", "filterBy", "outputState", "outputTo"],
  filterBy: ["transformBy", "filterBy", "outputState", "outputTo"],
  outputTo: [],
};

const STEPS = {
  when(handlers) {
    if (handlers === null || typeof handlers !== "object") fail("when() takes an object of handlers");
    for (const name of Object.keys(handlers)) {
      const handler = handlers[name];
      if (typeof handler !== "function") continue;
      if (name === "$init") definition.init = handler;
      else if (name === "$any") definition.any = handler;
      else if (name === "$initShared" || name === "$deleted" || name === "$created") {
        fail(name + " is not supported by this harness");
      } else definition.handlers[name] = handler;
    }
    return chain("when");
  },
  partitionBy() {
    fail("partitionBy is not supported by this harness");
  },
  foreachStream() {
    fail("foreachStream is not supported by this harness");
  },
  outputState() {
    definition.outputState = true;
    return chain("outputState");
  },
  transformBy(fn) {
    if (typeof fn !== "function") fail("transformBy() takes a function");
    definition.outputState = true;
    definition.transforms.push(["transform", fn]);
    return chain("transformBy");
  },
  filterBy(fn) {
    if (typeof fn !== "function") fail("filterBy() takes a function");
    definition.outputState = true;
    definition.transforms.push(["filter", fn]);
    return chain("filterBy");
  },
  outputTo(stream) {
    if (typeof stream !== "string") fail("outputTo() takes a stream name");
    definition.options.resultStreamName = stream;
    return chain("outputTo");
  },
  $defines_state_transform() {
    definition.outputState = true;
  },
};

function chain(step) {
  const next = {};
  for (const name of AVAILABLE[step]) next[name] = STEPS[name];
  return next;
}

let selected = false;
function select(streams, step) {
  if (selected) fail("more than one selector (fromStream, fromStreams, fromAll)");
  selected = true;
  definition.streams = streams;
  return chain(step);
}

const OPTIONS = ["$includelinks", "reorderevents", "processinglag", "resultstreamname", "bistate"];

const sandbox = {
  options(opts) {
    for (const key of Object.keys(opts || {})) {
      if (!OPTIONS.includes(key.toLowerCase())) fail("Unrecognized option: " + key);
      if (key.toLowerCase() === "bistate" && opts[key]) fail("biState is not supported by this harness");
      definition.options[key] = opts[key];
    }
  },
  fromStream(stream) {
    if (typeof stream !== "string") fail("fromStream() takes a stream name");
    return select([stream], "fromStream");
  },
  fromStreams(...streams) {
    const list = Array.isArray(streams[0]) ? streams[0] : streams;
    if (!list.every((s) => typeof s === "string")) fail("fromStreams() takes stream names");
    return select(list, "fromStreams");
  },
  fromAll() {
    return select(null, "fromAll");
  },
  fromCategory() {
    fail("fromCategory is not supported by this harness");
  },
};
const context = vm.createContext(sandbox);
const source = fs.readFileSync(projectionFile, "utf8");
try {
  vm.runInContext(source, context, { filename: projectionFile });
} catch (error) {
  fail("defining " + projectionFile + ": " + (error && error.stack ? error.stack : error));
}
if (!selected) fail(projectionFile + " selects no events (fromStream, fromStreams or fromAll)");

// ---- Execution: the definition globals go, the functions a handler may call come.

for (const name of Object.keys(sandbox)) delete context[name];

const links = [];
const emitted = [];

function needEmit(call) {
  if (!emitEnabled) {
    throw new Error(call + ": 'emit' is not allowed by the projection/configuration/mode");
  }
}

function streamName(value, what) {
  if (typeof value !== "string" || value.trim() === "") {
    throw new Error(what + " must be a non-empty string, got " + JSON.stringify(value));
  }
  return value;
}

context.linkTo = function linkTo(stream, event, metadata) {
  if (arguments.length !== 2 && arguments.length !== 3) throw new Error("linkTo: wrong number of parameters");
  needEmit("linkTo");
  streamName(stream, "linkTo stream");
  if (!event || typeof event.sequenceNumber !== "number" || typeof event.streamId !== "string") {
    throw new Error("Invalid link to event " + (event && event.sequenceNumber) + "@" + (event && event.streamId));
  }
  const link = { stream, eventType: "$>", data: event.sequenceNumber + "@" + event.streamId };
  if (metadata !== undefined) link.metadata = JSON.parse(JSON.stringify(metadata));
  links.push(link);
};
context.linkStreamTo = function linkStreamTo(stream, linkedStream) {
  needEmit("linkStreamTo");
  emitted.push({ stream: streamName(stream, "stream"), eventType: "$@", data: streamName(linkedStream, "linked stream") });
};
context.emit = function emit(stream, eventType, body, metadata) {
  if (arguments.length < 3) throw new Error("emit: invalid number of parameters");
  needEmit("emit");
  if (body === null || typeof body !== "object") throw new Error("emit: the event body must be an object");
  const event = { stream: streamName(stream, "emit stream"), eventType: streamName(eventType, "emit event type"), data: body };
  if (metadata !== undefined) event.metadata = metadata;
  emitted.push(JSON.parse(JSON.stringify(event)));
};
context.log = function log(...parts) {
  process.stderr.write("log: " + parts.map((p) => (typeof p === "object" ? JSON.stringify(p) : String(p))).join(" ") + "\n");
};

// Objects made in the projection's own realm, as the server's engine would make them.
const parseJson = vm.runInContext("(function (text) { return JSON.parse(text); })", context);

function envelope(record) {
  const bodyRaw = JSON.stringify(record.data);
  const metadataRaw = record.metadata === undefined ? "" : JSON.stringify(record.metadata);
  const body = parseJson(bodyRaw);
  return {
    streamId: record.stream,
    eventType: record.type,
    eventId: record.id,
    sequenceNumber: record.revision,
    isJson: true,
    bodyRaw,
    body,
    data: body,
    metadataRaw,
    metadata: metadataRaw === "" ? undefined : parseJson(metadataRaw),
    partition: "",
    category: "",
  };
}

function roundTrip(state, after) {
  if (state === undefined || state === null) return null;
  const text = JSON.stringify(state);
  if (text === undefined) throw new Error("the state after " + after + " is not JSON");
  return parseJson(text);
}

function result(state) {
  if (!definition.outputState) return null;
  let value = state;
  for (const [kind, fn] of definition.transforms) {
    if (kind === "transform") value = fn(value);
    else if (fn(value) !== true) return null;
    if (value === null || value === undefined) return null;
  }
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

let state = roundTrip(definition.init ? definition.init() : {}, "$init");
const states = [];
const lines = fs.readFileSync(eventsFile, "utf8").split("\n");
lines.forEach((line, index) => {
  if (line.trim() === "") return;
  let record;
  try {
    record = JSON.parse(line);
  } catch (error) {
    fail(eventsFile + ":" + (index + 1) + ": not JSON: " + error.message);
  }
  for (const field of ["stream", "revision", "type"]) {
    if (record[field] === undefined) fail(eventsFile + ":" + (index + 1) + ": no `" + field + "`");
  }
  if (definition.streams !== null && !definition.streams.includes(record.stream)) return;
  const handler = Object.prototype.hasOwnProperty.call(definition.handlers, record.type)
    ? definition.handlers[record.type]
    : definition.any;
  if (!handler) return;
  // The server skips a JSON event with empty data before it reaches any handler.
  if (record.data === undefined) return;
  const where = record.type + " at " + record.revision + "@" + record.stream;
  let next;
  try {
    next = handler(state, envelope(record));
  } catch (error) {
    fail("the projection faulted on " + where + ": " + (error && error.stack ? error.stack : error));
  }
  state = roundTrip(next === undefined ? state : next, where);
  // A copy: the next handler may change the state in place.
  if (every) states.push(JSON.parse(JSON.stringify({ revision: record.revision, state, result: result(state) })));
});

const output = { state, result: result(state), links, emitted };
if (every) output.states = states;
process.stdout.write(JSON.stringify(output) + "\n");
