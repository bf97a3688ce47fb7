"""The HTTP server: turn overhead over HTTP + SSE (M1), idle SSE streams per process (M7), and the same turns
against the LangGraph dev server (performance.md section 5) in the same run.

loophost runs as `loophost serve` in a subprocess; the client is raw HTTP (httpx2) on one long-lived SSE stream
per session, as a client library would hold it. The peer runs in its own throwaway environment
(`bench/.peers/langgraph-venv`, from `bench/peers/langgraph/requirements.txt`) and is skipped, saying so, when it
cannot be installed.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric, ratio

KEY = "bench-key"
HEADERS = {"authorization": f"Bearer {KEY}", "anthropic-beta": "managed-agents-2026-04-01"}
PEER_DIR = Path(__file__).parent / "peers" / "langgraph"
PEER_VENV = Path(__file__).parent / ".peers" / "langgraph-venv"
ROOT = Path(__file__).parents[1]


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@asynccontextmanager
async def loophost_server(ctx: Context, *, heartbeat: float = 15.0) -> AsyncIterator[tuple[str, int]]:
    """`loophost serve` on a fresh database; yields (base URL, pid)."""
    env = {**os.environ, "LOOPHOST_API_KEYS": KEY, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0",
        "--database", str(ctx.fresh_path("server")), "--heartbeat", str(heartbeat),
        stdout=asyncio.subprocess.PIPE, env=env, preexec_fn=_raise_fd_limit,
    )  # fmt: skip
    assert process.stdout is not None
    url = ""
    while not url:
        line = (await process.stdout.readline()).decode()
        if not line:
            raise RuntimeError("loophost serve exited before it listened")
        if line.startswith("loophost listening on "):
            url = line.split()[-1]
    try:
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _session(http: httpx2.AsyncClient) -> str:
    agent = (await http.post("/v1/agents", json={"name": "bench", "model": "scripted"})).json()
    env = (await http.post("/v1/environments", json={"name": f"bench-{agent['id']}"})).json()
    session = (await http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})).json()
    return str(session["id"])


async def _turns(http: httpx2.AsyncClient, session_id: str, count: int, samples: list[float]) -> None:
    """`count` echo turns on one SSE stream: send `user.message`, time until `session.status_idle` arrives."""
    async with http.stream("GET", f"/v1/sessions/{session_id}/events/stream", timeout=None) as stream:
        lines = stream.aiter_lines()
        for i in range(count):
            started = time.perf_counter()
            body = {"events": [{"type": "user.message", "content": [{"type": "text", "text": f"hello {i}"}]}]}
            response = await http.post(f"/v1/sessions/{session_id}/events", json=body)
            response.raise_for_status()
            async for line in lines:
                if line == "event: session.status_idle":
                    break
            samples.append(time.perf_counter() - started)


@benchmark("http.turn_overhead")
async def http_turn_overhead(ctx: Context) -> AsyncIterator[Metric]:
    """Send user.message -> session.status_idle on SSE, scripted model, no tools; and the LangGraph dev server."""
    sessions, per_session = ctx.size(50, 10), 20
    samples: list[float] = []
    concurrent: dict[str, float] = {}
    async with loophost_server(ctx) as (url, _pid), httpx2.AsyncClient(base_url=url, headers=HEADERS) as http:
        warm: list[float] = []
        await _turns(http, await _session(http), 5, warm)
        for _ in range(sessions):  # fresh sessions keep the model's history short: we measure the runtime
            await _turns(http, await _session(http), per_session, samples)
        ids = [await _session(http) for _ in range(20)]
        started = time.perf_counter()
        lat: list[float] = []
        await asyncio.gather(*(_turns(http, s, 10, lat) for s in ids))
        concurrent = {"turns_per_s": len(lat) / (time.perf_counter() - started), **latency_ms(lat)}
    ours = latency_ms(samples)
    peer, problem = await _langgraph_peer(ctx, runs=ctx.size(100, 20))
    exec_p50 = peer.get("exec_p50") if peer else None
    yield metric(
        "http.turn_overhead",
        ours["p50"],
        "ms",
        p50=ours["p50"],
        p99=ours["p99"],
        turns=len(samples),
        goal="p50 <= 3 ms, p99 <= 10 ms (M1)",
        peer="LangGraph dev server (in-memory runtime), one-node graph, zero-latency fake model"
        if peer
        else f"not measured: {problem}",
        peer_end_to_end_p50=peer.get("p50") if peer else None,
        peer_exec_p50=exec_p50,
        ratio_vs_peer_exec=ratio(ours["p50"], exec_p50),
        ref="M1",
    )
    peer_rate = peer.get("concurrent_runs_per_s") if peer else None
    yield metric(
        "http.turns_concurrency_20",
        round(concurrent["turns_per_s"], 1),
        "turns/s",
        p50=concurrent["p50"],
        p99=concurrent["p99"],
        p_unit="ms per turn",
        peer_runs_per_s=peer_rate,
        ratio_vs_peer=ratio(concurrent["turns_per_s"], peer_rate),
        goal=">= 10x the LangGraph dev server at concurrency 20",
        ref="peer",
    )


async def _langgraph_peer(ctx: Context, *, runs: int) -> tuple[dict[str, Any] | None, str]:
    """Sequential runs/wait (end to end and the server's own run_exec_ms), then 200 runs at concurrency 20.
    Returns the figures, or None and why the peer could not be measured."""
    if not (PEER_VENV / "bin" / "langgraph").exists():
        ctx.log("installing the LangGraph peer into bench/.peers/langgraph-venv ...")
        problem = await asyncio.to_thread(_install_peer)
        if problem:
            ctx.log(f"{problem}; measuring loophost alone")
            return None, problem
    port = 8700 + os.getpid() % 200
    log_path = ctx.fresh_path("langgraph", ".log")
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1", "NO_COLOR": "1"}
    log = log_path.open("w")
    process = await asyncio.create_subprocess_exec(
        str(PEER_VENV / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload", "--port", str(port),
        cwd=PEER_DIR, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(240):
                try:
                    if (await http.get("/ok")).status_code == 200:
                        break
                except httpx2.HTTPError:
                    pass
                await asyncio.sleep(0.25)
            else:
                return None, "the LangGraph dev server did not start"

            async def run_once() -> float:
                thread = (await http.post("/threads", json={})).json()["thread_id"]
                body = {"assistant_id": "echo", "input": {"messages": [{"role": "user", "content": "hello"}]}}
                started = time.perf_counter()
                (await http.post(f"/threads/{thread}/runs/wait", json=body)).raise_for_status()
                return time.perf_counter() - started

            await run_once()
            sequential = [await run_once() for _ in range(runs)]
            started = time.perf_counter()
            semaphore = asyncio.Semaphore(20)

            async def bounded() -> float:
                async with semaphore:
                    return await run_once()

            concurrent = await asyncio.gather(*(bounded() for _ in range(200)))
            rate = len(concurrent) / (time.perf_counter() - started)
    finally:
        process.terminate()
        await process.wait()
        log.close()
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text())
    exec_ms = [float(x) for x in re.findall(r"run_exec_ms=(\d+(?:\.\d+)?)", text)]
    stats = latency_ms(sequential)
    exec_sorted = sorted(exec_ms)
    figures = {
        "p50": stats["p50"],
        "exec_p50": exec_sorted[len(exec_sorted) // 2] if exec_sorted else None,
        "concurrent_runs_per_s": round(rate, 1),
    }
    return figures, ""


def _install_peer() -> str:
    """Install the peer into its own throwaway environment; an empty string on success, else what failed."""
    uv = next(ROOT.glob(".tools/uv-*/bin/uv"), None)
    if uv is None:
        return "no uv in .tools (run make first)"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    if subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(PEER_VENV)], env=env).returncode:
        return "could not create the peer's environment"
    requirements = str(PEER_DIR / "requirements.txt")
    python = str(PEER_VENV / "bin" / "python")
    if subprocess.run([str(uv), "pip", "install", "-q", "--python", python, "-r", requirements], env=env).returncode:
        return "the LangGraph peer could not be installed"
    return ""


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@benchmark("http.idle_streams")
async def idle_streams(ctx: Context) -> AsyncIterator[Metric]:
    """Open N idle SSE streams (heartbeats on) to one process; server RSS growth per stream."""
    count = ctx.size(10_000, 1_000)
    _raise_fd_limit()
    async with (
        loophost_server(ctx, heartbeat=15.0) as (url, pid),
        httpx2.AsyncClient(base_url=url, headers=HEADERS) as http,
    ):
        session_ids = [await _session(http) for _ in range(10)]
        host, port = url.removeprefix("http://").split(":")
        # one turn first: the agent core is imported in the background after start-up, and that import (tens of
        # MB) must not land inside the measurement
        await _turns(http, session_ids[0], 1, [])
        await asyncio.sleep(0.5)
        before = _rss_kb(pid)
        writers: list[asyncio.StreamWriter] = []
        opened = failed = 0
        for i in range(count):
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                request = (
                    f"GET /v1/sessions/{session_ids[i % 10]}/events/stream HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {KEY}\r\nAccept: text/event-stream\r\n\r\n"
                )
                writer.write(request.encode())
                status = await asyncio.wait_for(reader.readline(), 30)
                if b" 200 " not in status:
                    failed += 1
                    writer.close()
                    continue
                writers.append(writer)
                opened += 1
            except (OSError, TimeoutError):
                failed += 1
            if i and i % 2000 == 0:
                ctx.log(f"{i} streams open")
        await asyncio.sleep(1.0)
        after = _rss_kb(pid)
        for writer in writers:
            writer.close()
        await asyncio.sleep(1.0)
        released = _rss_kb(pid)
    per_stream = (after - before) / opened if opened else None
    yield metric(
        "http.idle_streams",
        opened,
        "streams",
        kb_per_stream=round(per_stream, 2) if per_stream is not None else None,
        failed=failed,
        rss_before_kb=before,
        rss_open_kb=after,
        rss_after_close_kb=released,
        goal=">= 10000 concurrent idle streams at <= 16 KB each (M7)",
        ref="M7",
    )


@benchmark("http.stream_churn")
async def stream_churn(ctx: Context) -> AsyncIterator[Metric]:
    """Connect/abort cycles (half with a FIN, half reset without one): server RSS slope after warm-up (M12)."""
    rounds, per_round = ctx.size(20, 6), ctx.size(2_500, 500)
    _raise_fd_limit()
    server = loophost_server(ctx, heartbeat=15.0)
    async with server as (url, pid), httpx2.AsyncClient(base_url=url, headers=HEADERS) as http:
        session_ids = [await _session(http) for _ in range(10)]
        host, port = url.removeprefix("http://").split(":")
        samples: list[int] = []
        for round_index in range(rounds):
            writers: list[asyncio.StreamWriter] = []
            for i in range(per_round):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(
                    f"GET /v1/sessions/{session_ids[i % 10]}/events/stream HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {KEY}\r\n\r\n".encode()
                )
                await asyncio.wait_for(reader.readline(), 30)
                writers.append(writer)
            for i, writer in enumerate(writers):
                if i % 2:  # abort: RST instead of FIN
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
            await asyncio.sleep(0.5)
            samples.append(_rss_kb(pid))
            ctx.log(f"round {round_index + 1}/{rounds}: rss {samples[-1]:,} KB")
    warm = samples[2:]  # after warm-up; a least-squares slope, since RSS wanders by a few MB round to round
    fit = statistics.linear_regression(range(len(warm)), warm)
    slope = fit.slope / per_round * 10_000 / 1024
    yield metric(
        "http.stream_churn",
        round(slope, 2),
        "MB per 10k cycles",
        cycles=rounds * per_round,
        rss_first_kb=samples[0],
        rss_last_kb=samples[-1],
        rss_per_round_kb=samples,
        goal="<= 1 MB per 10k cycles after warm-up (M12)",
        ref="M12",
    )
