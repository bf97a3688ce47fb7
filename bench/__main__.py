"""`python -m bench`: discover the benchmark modules, run the selected benchmarks, print JSON lines."""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, cast

import bench
from loophost._aio import run

from ._registry import REGISTRY, Benchmark, Context, select
from ._report import Metric, emit, environment

FIRST = ("store", "bus", "stream")
"""Modules run in this order; any other module of the package runs after them, alphabetically."""


def discover() -> list[str]:
    """Import every public module of the package (registering its benchmarks); return the ones that failed."""
    failed: list[str] = []
    found = [m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")]
    for name in sorted(found, key=lambda n: (FIRST.index(n) if n in FIRST else len(FIRST), n)):
        try:
            importlib.import_module(f"bench.{name}")
        except Exception:
            print(f"[bench] could not import bench.{name}:", file=sys.stderr)
            traceback.print_exc()
            failed.append(name)
    return failed


async def run_one(spec: Benchmark, ctx: Context, env: dict[str, Any]) -> int:
    """Run one benchmark, printing each metric as it arrives; return how many lines it printed."""
    printed = 0
    result = spec.fn(ctx)
    if inspect.isasyncgen(result):
        async for line in cast(AsyncIterator[Metric], result):
            emit({**line, "bench": spec.name}, env)
            printed += 1
    else:
        for line in await cast(Awaitable[Iterable[Metric]], result):
            emit({**line, "bench": spec.name}, env)
            printed += 1
    return printed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME[,NAME]",
        help="run only these benchmarks: exact names or dotted prefixes ('store' runs store.*); repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats, for a smoke run")
    parser.add_argument("--list", action="store_true", help="list the registered benchmarks and exit")
    parser.add_argument("--tmpdir", default=None, help="where the benchmark databases go (default: system temp)")
    args = parser.parse_args(argv)

    failed_imports = discover()
    if args.list:
        for spec in REGISTRY.values():
            print(f"{spec.name:40} {spec.doc}")
        return 1 if failed_imports else 0

    patterns = [p.strip() for chunk in args.only or [] for p in chunk.split(",") if p.strip()]
    names = select(REGISTRY, patterns)
    unknown = [p for p in patterns if not select(REGISTRY, [p])]
    if unknown:
        known = ", ".join(REGISTRY) or "none"
        print(f"[bench] no benchmark matches {', '.join(unknown)} (known: {known})", file=sys.stderr)
        return 2

    env = {**environment(), "quick": args.quick}
    errors = len(failed_imports)
    for name in failed_imports:
        emit({"metric": f"{name}.*", "value": None, "unit": None, "error": "module failed to import"}, env)
    suite_started = time.perf_counter()
    for name in names:
        spec = REGISTRY[name]
        ctx, holder = Context.make(name, quick=args.quick, tmp_root=args.tmpdir)
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            gc.collect()
            run(run_one(spec, ctx, env))
        except Exception as exc:
            errors += 1
            traceback.print_exc()
            emit({"metric": name, "value": None, "unit": None, "error": f"{type(exc).__name__}: {exc}"}, env)
        finally:
            holder.cleanup()
        print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - suite_started
    print(f"[bench] {len(names)} benchmark(s) in {total:.1f} s, {errors} error(s)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
