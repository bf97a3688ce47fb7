"""Child process for the crash tests: commit events in bursts, printing each event id once its commit is acked."""

from __future__ import annotations

import asyncio
import sys

from loophost.runtime.store import NewEvent, SessionRow, SQLiteStore


async def main(path: str, sessions: int) -> None:
    store = SQLiteStore(path)
    await store.open()
    for s in range(sessions):
        row = SessionRow("ws", f"sesn_{s}", "agent", 1, "env", "idle", "2026-01-01", None, 1, 0, "{}")
        await store.insert_session(row)
    print("ready", flush=True)
    out = sys.stdout

    async def appender(worker: int) -> None:
        i = 0
        while True:
            event_id = f"sevt_{worker}_{i}"
            body = '{"id": "%s", "type": "agent.message", "processed_at": null}' % event_id
            event = NewEvent(event_id, "agent.message", None, body)
            await store.commit_session(f"sesn_{worker % sessions}", expected_revision=None, events=[event])
            out.write(f"ack {worker % sessions} {event_id}\n")
            out.flush()
            i += 1

    await asyncio.gather(*(appender(w) for w in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
