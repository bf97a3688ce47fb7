"""Server settings: limits and timings an operator may change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    heartbeat_interval: float = 15.0
    """Seconds between `event: ping` frames on an idle stream (proxies drop silent connections)."""
    max_json_body_bytes: int = 8 * 1024 * 1024
    """Largest JSON request body; larger ones are refused with 413 before they are read."""
    max_upload_bytes: int = 64 * 1024 * 1024
    """Largest file upload (multipart body)."""
    console: bool = True
    """Serve the web console at `/console` (`loophost serve --no-console` turns it off)."""
    metrics: bool = False
    """Serve `/metrics` (Prometheus text, no key) and count (`server/_metrics.py`); `loophost serve` turns it on
    unless `--no-metrics`, or `--metrics-port` moves it to a listener of its own."""
