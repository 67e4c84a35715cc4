// dobrobot-by-ticket: links every ledger event about a ticket to `dobrobot-ticket-<TICKET>`, so
// that one ticket's whole story (request, approvals, refusals, deployment) reads as one stream.
//
// An event is about a ticket when its data has one: every release and deployment event, and a
// refused command that named a ticket (`Event::ticket` in src/domain/event.rs). Freezes are
// about no ticket and are not linked. Ticket keys are stored upper-case (`PAY-123`), so one
// ticket has one stream whatever case people typed.
//
// Plain ES5 on purpose: EventStoreDB has run projections on V8 and on Jint over the years.

// ---- Set by `dobrobot projections install`, which rewrites this line (keep it on one line).
var LEDGER_STREAM = "dobrobot-ledger-prod"; // @dobrobot-install: the ledger stream of the environment

fromStream(LEDGER_STREAM).when({
  $any: function (s, e) {
    var ticket = e.body ? e.body.ticket : null;
    if (typeof ticket === "string" && ticket !== "") {
      linkTo("dobrobot-ticket-" + ticket, e);
    }
  }
});
