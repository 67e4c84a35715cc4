// dobrobot-by-service: links every ledger event to `dobrobot-service-<SERVICE>` for each service
// it concerns, so that one service's story (who asked to deploy it, who deployed it, freezes,
// refusals) reads as one stream.
//
// Which services an event concerns, the same as the audit history's service filter
// (src/projections/history.rs) except for freezes, where a stream cannot be written after the
// fact:
//   - ReleaseRequested and DeploymentStarted: the services they carry.
//   - Every other event about a ticket (approvals, admins, finishes, rollbacks, rejections,
//     cancellations, refusals that name the ticket): the services of the ticket's latest
//     request. A refusal about a ticket never requested concerns no service.
//   - FreezeStarted with services: those services.
//   - FreezeStarted without services freezes everything, so it concerns every service known
//     when it starts: the services named in the config (substituted below by the install
//     command) and every service seen in the ledger so far. A service first seen after the
//     freeze started does not get the freeze in its stream (history would list it).
//   - FreezeEnded: the services of the freeze it ends (for a freeze of everything, every
//     service known when it ends), so each service stream pairs a freeze with its end.
//     (History lists every FreezeEnded under every service.)
//   - A refused freeze or unfreeze names no ticket and no services: no links.
//
// Plain ES5 on purpose: EventStoreDB has run projections on V8 and on Jint over the years.

// ---- Set by `dobrobot projections install`, which rewrites these two lines (keep each on
// ---- one line). The values here are what a default config gives.
var LEDGER_STREAM = "dobrobot-ledger-prod"; // @dobrobot-install: the ledger stream of the environment
var CONFIGURED_SERVICES = []; // @dobrobot-install: every service named in the config, sorted

fromStream(LEDGER_STREAM).when({
  $init: function () {
    return {
      // Ticket -> the services of its latest request.
      services_of: {},
      // Every service known so far: configured, or seen in a request or a start.
      known: CONFIGURED_SERVICES.slice(),
      // The services the freeze in force concerns; null when there is no freeze.
      frozen: null
    };
  },

  $any: function (s, e) {
    var d = e.body || {};
    var concerned;
    switch (e.eventType) {
      case "ReleaseRequested":
        s.services_of[d.ticket] = d.services.slice();
        learn(s, d.services);
        concerned = d.services;
        break;
      case "DeploymentStarted":
        learn(s, d.services);
        concerned = d.services;
        break;
      case "FreezeStarted":
        concerned = d.services ? d.services : s.known.slice();
        s.frozen = { services: d.services ? d.services.slice() : null };
        break;
      case "FreezeEnded":
        if (s.frozen === null) {
          concerned = [];
        } else {
          concerned = s.frozen.services === null ? s.known.slice() : s.frozen.services;
        }
        s.frozen = null;
        break;
      default:
        concerned = typeof d.ticket === "string" ? s.services_of[d.ticket] || [] : [];
    }
    unique(concerned).forEach(function (service) {
      linkTo("dobrobot-service-" + service, e);
    });
    return s;
  }
});

// Adds services to `known`, kept sorted.
function learn(s, services) {
  services.forEach(function (service) {
    if (s.known.indexOf(service) < 0) {
      s.known.push(service);
    }
  });
  s.known.sort();
}

function unique(services) {
  return services.filter(function (service, i) {
    return services.indexOf(service) === i;
  });
}
