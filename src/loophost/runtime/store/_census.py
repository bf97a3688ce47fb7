"""`Census`: how many sessions and work items there are, by state, for the metrics scraped at `/metrics`.

A role of its own beside the session store (`Store.census`): three grouped counts and the webhook backlog, read
when a scraper asks, never kept up to date by the writes. Over every workspace: the numbers are the operator's,
and name no workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ("Census", "Counts")


@dataclass(frozen=True, slots=True)
class Counts:
    sessions: dict[str, int]
    """Sessions by status (`idle`, `running`, `rescheduling`, `terminated`)."""
    work_items: dict[str, int]
    """Live work items by state (`queued`, `starting`, `active`, `stopping`; stopped ones are history)."""
    queued: dict[str, int]
    """Queued work items by environment id (environments with none are left out)."""
    webhook_backlog: int = 0
    """Webhook deliveries still pending (due now or waiting to retry), every endpoint."""


class Census(Protocol):
    async def counts(self) -> Counts: ...
