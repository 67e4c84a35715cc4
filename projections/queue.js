// dobrobot-queue: the open release requests, their place in line and what each waits for.
//
// The state has the same items, with the same fields, as the Rust queue projection
// (src/domain/queue.rs): ticket, services, requester, status, position, waiting_for, approver,
// admin, need_admin, wiki, comment. `locks` and `freeze` are kept next to it because the
// waiting_for rules need them. The projection's result (transformBy) is the queue alone.
//
// The waiting_for rules restate `start_blockers` in src/domain/decide.rs, and the fold restates
// `State::evolve` in src/domain/state.rs. The Rust code is the authority: when a rule changes
// there, change it here too; tests/projections_js.rs compares the two on a generated ledger at
// every revision and fails on any difference.
//
// Plain ES5 on purpose: EventStoreDB has run projections on V8 and on Jint over the years.

// ---- Set by `dobrobot projections install`, which rewrites these two lines (keep each on
// ---- one line). The values here are what a default config gives.
var LEDGER_STREAM = "dobrobot-ledger-prod"; // @dobrobot-install: the ledger stream of the environment
var CONFLICT_GROUPS = []; // @dobrobot-install: [{"name": "...", "services": ["..."]}] in config order

fromStream(LEDGER_STREAM)
  .when({
    $init: function () {
      return {
        // Open requests in request order (the order of their ReleaseRequested events).
        queue: [],
        // Held locks: "service:NAME" or "group:NAME" -> the ticket that holds it.
        locks: {},
        // null, or the freeze in force; `services: null` freezes every service.
        freeze: null,
        // The conflict groups in force: the installed config's until the ledger records a
        // policy (PolicyChanged), then the recorded ones.
        conflict_groups: CONFLICT_GROUPS
      };
    },

    ReleaseRequested: function (s, e) {
      var d = e.body;
      // A second request for an open ticket replaces the first and goes to the back of the
      // line, as a new request does in State::evolve.
      remove(s, d.ticket);
      s.queue.push({
        ticket: d.ticket,
        services: d.services.slice(),
        requester: d.requester,
        status: "requested",
        position: 0,
        waiting_for: [],
        approver: null,
        admin: null,
        need_admin: d.need_admin,
        wiki: d.wiki === undefined ? null : d.wiki,
        comment: d.comment
      });
      return refresh(s);
    },

    ReleaseApproved: function (s, e) {
      var item = find(s, e.body.ticket);
      if (item) {
        item.status = "accepted";
        item.approver = e.body.approver;
      }
      return refresh(s);
    },

    AdminJoined: function (s, e) {
      var item = find(s, e.body.ticket);
      if (item) {
        item.admin = e.body.admin;
        // A joined admin counts as a needed one (queue.rs: need_admin unless NotNeeded).
        item.need_admin = true;
      }
      return refresh(s);
    },

    DeploymentStarted: function (s, e) {
      var d = e.body;
      var item = find(s, d.ticket);
      if (item) {
        if (item.status === "requested") {
          item.approver = d.by;
        }
        item.status = "deploying";
      }
      // The locks are taken whether or not the request is open, as in State::evolve; the
      // groups are the ones recorded when it started, not today's config.
      d.services.forEach(function (name) {
        s.locks[lockId({ kind: "service", name: name })] = d.ticket;
      });
      d.conflict_groups.forEach(function (name) {
        s.locks[lockId({ kind: "group", name: name })] = d.ticket;
      });
      return refresh(s);
    },

    DeploymentFinished: function (s, e) {
      return closeDeployment(s, e.body.ticket);
    },

    DeploymentRolledBack: function (s, e) {
      return closeDeployment(s, e.body.ticket);
    },

    // A takeover (`dep takeover`) ends a deployment as a rollback does.
    DeploymentAbandoned: function (s, e) {
      return closeDeployment(s, e.body.ticket);
    },

    ReleaseRejected: function (s, e) {
      remove(s, e.body.ticket);
      return refresh(s);
    },

    ReleaseCancelled: function (s, e) {
      remove(s, e.body.ticket);
      return refresh(s);
    },

    FreezeStarted: function (s, e) {
      var d = e.body;
      s.freeze = { by: d.by, reason: d.reason, services: d.services === undefined ? null : d.services };
      return refresh(s);
    },

    FreezeEnded: function (s, e) {
      s.freeze = null;
      return refresh(s);
    },

    // The rules changed: the conflict groups of the recorded policy decide the locks from here.
    PolicyChanged: function (s, e) {
      s.conflict_groups = e.body.policy.conflict_groups.map(function (group) {
        return { name: group.name, services: group.services.slice() };
      });
      return refresh(s);
    }
    // CommandRefused, ReminderSent, DeploymentAlive and TakeoverProposed change nothing in the
    // queue and have no handler, so the projection never sees them (nor any event type it does
    // not know).
  })
  .transformBy(function (s) {
    return s.queue;
  })
  .outputState();

function find(s, ticket) {
  for (var i = 0; i < s.queue.length; i++) {
    if (s.queue[i].ticket === ticket) {
      return s.queue[i];
    }
  }
  return null;
}

function remove(s, ticket) {
  s.queue = s.queue.filter(function (item) {
    return item.ticket !== ticket;
  });
}

// A finished, rolled-back or abandoned deployment leaves the queue and frees every lock it held.
function closeDeployment(s, ticket) {
  remove(s, ticket);
  for (var id in s.locks) {
    if (s.locks.hasOwnProperty(id) && s.locks[id] === ticket) {
      delete s.locks[id];
    }
  }
  return refresh(s);
}

// Recomputes every item's position and waiting_for: both depend on the other requests.
function refresh(s) {
  s.queue.forEach(function (item, index) {
    var earlier = s.queue.slice(0, index);
    item.position =
      1 +
      earlier.filter(function (other) {
        return shared(s, other, item) !== null;
      }).length;
    item.waiting_for = waitingFor(s, item, earlier);
  });
  return s;
}

// What `dep start` of this request would be refused for now, apart from who asks: the rules of
// `start_blockers` in src/domain/decide.rs, in the same order, mapped to queue.rs's `Waiting`.
function waitingFor(s, item, earlier) {
  // A deploying release waits for nothing (start_blockers: AlreadyDeploying, not a Waiting).
  if (item.status === "deploying") {
    return [];
  }
  var waiting = [];
  // NotAccepted
  if (item.status === "requested") {
    waiting.push({ kind: "approval" });
  }
  // AdminRequired
  if (!adminReady(item)) {
    waiting.push({ kind: "admin" });
  }
  // Frozen: the freeze covers one of the release's services.
  if (
    s.freeze !== null &&
    item.services.some(function (name) {
      return s.freeze.services === null || s.freeze.services.indexOf(name) >= 0;
    })
  ) {
    waiting.push({ kind: "freeze" });
  }
  // LockHeld: the first lock it needs (its services, then its conflict groups from config)
  // that another ticket holds. Only the first is reported.
  var wanted = item.services
    .map(function (name) {
      return { kind: "service", name: name };
    })
    .concat(
      groupsOf(s, item.services).map(function (name) {
        return { kind: "group", name: name };
      })
    );
  for (var i = 0; i < wanted.length; i++) {
    var holder = s.locks[lockId(wanted[i])];
    if (holder !== undefined && holder !== item.ticket) {
      waiting.push({ kind: "lock", lock: wanted[i], ticket: holder });
      break;
    }
  }
  // NotYourTurn: the first earlier request that is accepted, not yet deploying, has its admin,
  // and shares a service or a conflict group with this one (first come, first served spans a
  // conflict group).
  for (var j = 0; j < earlier.length; j++) {
    var other = earlier[j];
    if (other.status === "accepted" && adminReady(other)) {
      var over = shared(s, other, item);
      if (over !== null) {
        waiting.push({ kind: "turn", ahead: other.ticket, over: over });
        break;
      }
    }
  }
  return waiting;
}

// Release::admin_ready: no admin needed, or one has joined.
function adminReady(item) {
  return !item.need_admin || item.admin !== null;
}

// Policy::groups_of: the conflict groups in force that any of the services belongs to.
function groupsOf(s, services) {
  return s.conflict_groups.filter(function (group) {
    return services.some(function (name) {
      return group.services.indexOf(name) >= 0;
    });
  }).map(function (group) {
    return group.name;
  });
}

// `shared` in src/domain/decide.rs: the first service of `other` that `item` deploys too, else
// the first conflict group of `item` that `other`'s services are in too (a LockKey), or null.
function shared(s, other, item) {
  for (var i = 0; i < other.services.length; i++) {
    if (item.services.indexOf(other.services[i]) >= 0) {
      return { kind: "service", name: other.services[i] };
    }
  }
  var theirs = groupsOf(s, other.services);
  var ours = groupsOf(s, item.services);
  for (var j = 0; j < ours.length; j++) {
    if (theirs.indexOf(ours[j]) >= 0) {
      return { kind: "group", name: ours[j] };
    }
  }
  return null;
}

// LockKey as a property name of `locks`.
function lockId(key) {
  return key.kind + ":" + key.name;
}
