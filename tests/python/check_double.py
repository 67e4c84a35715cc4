#!/usr/bin/env python3
"""Checks an EventStoreDB/KurrentDB server with an independent client (kurrentdbclient, PyPI).

Usage: check_double.py URL [LEDGER_STREAM EXPECTED_JSON]

URL is a connection string such as esdb://127.0.0.1:2113?tls=false. The script appends to a new
stream of its own, one event (Streams.Append) and several at once (Streams.BatchAppend), reads
them back both ways, checks that a stale expected version is refused with the current version,
that a missing stream is not found, and that a catch-up subscription delivers the history and
then reports being caught up.

With LEDGER_STREAM and EXPECTED_JSON (a JSON list of {"id", "type"}) it also reads events that
dobrobot wrote beforehand and checks them: the ids and types in order, JSON data, and JSON
metadata whose hash chain links each event to the one before.

Run it against the test double (tests/esdb_python.rs does) or against a real server, e.g. the one
from docker-compose: check_double.py "esdb://localhost:2113?tls=false". Exits 0 when every check
passes; prints what failed otherwise.
"""

from __future__ import annotations

import json
import sys
import uuid

from kurrentdbclient import KurrentDBClient, NewEvent, StreamState
from kurrentdbclient.exceptions import NotFoundError, WrongCurrentVersionError

GENESIS_HASH = "0" * 64


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def event(n: int) -> NewEvent:
    return NewEvent(
        type="PythonChecked",
        data=json.dumps({"n": n}).encode(),
        metadata=json.dumps({"by": "check_double.py"}).encode(),
    )


def check_appends_and_reads(client: KurrentDBClient) -> None:
    stream = f"python-check-{uuid.uuid4()}"

    first = event(0)
    position = client.append_to_stream(stream, events=first, current_version=StreamState.NO_STREAM)
    check(isinstance(position, int), "a single append answers a commit position")

    batch = [event(1), event(2), event(3)]
    client.append_to_stream(stream, events=batch, current_version=0)

    recorded = client.get_stream(stream)
    check([e.stream_position for e in recorded] == [0, 1, 2, 3], f"positions: {recorded}")
    check([json.loads(e.data)["n"] for e in recorded] == [0, 1, 2, 3], "data read back")
    check([e.id for e in recorded] == [first.id] + [e.id for e in batch], "ids kept")
    check(all(e.type == "PythonChecked" for e in recorded), "types kept")
    check(all(e.content_type == "application/json" for e in recorded), "content type kept")
    check(
        all(json.loads(e.metadata) == {"by": "check_double.py"} for e in recorded),
        "metadata kept",
    )

    backwards = client.get_stream(stream, backwards=True, limit=2)
    check([e.stream_position for e in backwards] == [3, 2], f"backwards: {backwards}")
    from_two = client.get_stream(stream, stream_position=2)
    check([e.stream_position for e in from_two] == [2, 3], f"from 2: {from_two}")

    for current_version, events in ((1, event(4)), (1, [event(4), event(5)])):
        try:
            client.append_to_stream(stream, events=events, current_version=current_version)
        except WrongCurrentVersionError as error:
            check("3" in str(error), f"the current version is reported: {error}")
        else:
            raise AssertionError("a stale expected version was accepted")

    try:
        client.get_stream(f"missing-{uuid.uuid4()}")
    except NotFoundError:
        pass
    else:
        raise AssertionError("a missing stream was found")

    subscription = client.subscribe_to_stream(stream, include_caught_up=True, timeout=10)
    seen = []
    for item in subscription:
        if type(item).__name__ == "CaughtUp":
            break
        seen.append(item.stream_position)
    subscription.stop()
    check(seen == [0, 1, 2, 3], f"subscription history: {seen}")


def check_ledger(client: KurrentDBClient, stream: str, expected: list[dict]) -> None:
    try:
        recorded = client.get_stream(stream)
    except NotFoundError:
        raise AssertionError(f"the ledger stream {stream!r} was not found") from None
    check(
        [(str(e.id), e.type) for e in recorded] == [(x["id"], x["type"]) for x in expected],
        f"ledger events: {[(str(e.id), e.type) for e in recorded]}",
    )
    prev_hash = GENESIS_HASH
    for e in recorded:
        check(e.content_type == "application/json", f"{e.id}: content type {e.content_type}")
        json.loads(e.data)
        metadata = json.loads(e.metadata)
        check(metadata.get("prev_hash") == prev_hash, f"{e.id}: broken hash chain")
        check(len(metadata.get("hash", "")) == 64, f"{e.id}: no hash")
        prev_hash = metadata["hash"]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    client = KurrentDBClient(uri=argv[1])
    try:
        check_appends_and_reads(client)
        if len(argv) == 4:
            check_ledger(client, argv[2], json.loads(argv[3]))
    except AssertionError as failure:
        print(f"check failed: {failure}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
