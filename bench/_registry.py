"""The benchmark registry: `@benchmark("group.name")` on an `async def (ctx: Context)`.

The function either is an async generator yielding metric dicts (each line is printed as soon as it is
yielded) or a coroutine returning an iterable of them. The registry lives here, not in `bench/__main__.py`:
under `python -m bench` that module runs as `__main__`, so importing it from a benchmark module would load
a second copy with a second, empty registry.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._report import Metric

BenchFn = Callable[["Context"], AsyncIterator[Metric] | Awaitable[Iterable[Metric]]]

_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


@dataclass(slots=True)
class Context:
    """What a benchmark gets: the run mode and a private temporary directory (removed after the benchmark)."""

    name: str
    quick: bool
    tmpdir: Path
    _files: int = field(default=0, repr=False)

    def size(self, full: int, quick: int) -> int:
        """Pick a size for the mode: `full` normally, `quick` under `--quick`."""
        return quick if self.quick else full

    def fresh_path(self, stem: str = "bench", suffix: str = ".db") -> Path:
        """A path in the benchmark's temp dir that no earlier call returned (e.g. a fresh SQLite file)."""
        self._files += 1
        return self.tmpdir / f"{stem}-{self._files}{suffix}"

    def log(self, message: str) -> None:
        """A progress message, to stderr (stdout carries only the JSON lines)."""
        print(f"[bench {self.name}] {message}", file=sys.stderr, flush=True)

    @classmethod
    def make(cls, name: str, *, quick: bool, tmp_root: str | None) -> tuple[Context, tempfile.TemporaryDirectory[str]]:
        holder = tempfile.TemporaryDirectory(prefix=f"loophost-bench-{name}-", dir=tmp_root)
        return cls(name=name, quick=quick, tmpdir=Path(holder.name)), holder


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    fn: BenchFn
    module: str
    doc: str


REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register `fn` under `name` (dotted, lowercase: `group.what`). Names must be unique."""
    if not _NAME.match(name):
        raise ValueError(f"benchmark name {name!r} must be dotted lowercase words, e.g. 'store.append'")

    def register(fn: BenchFn) -> BenchFn:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice ({REGISTRY[name].module}, {fn.__module__})")
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Benchmark(name, fn, fn.__module__, doc[0] if doc else "")
        return fn

    return register


def select(names: Iterable[str], patterns: list[str] | None) -> list[str]:
    """The registered names matching any pattern: an exact name, or a dotted prefix (`store` → `store.*`)."""
    ordered = list(names)
    if not patterns:
        return ordered
    chosen: list[str] = []
    for name in ordered:
        if any(name == p or name.startswith(p.rstrip(".") + ".") for p in patterns):
            chosen.append(name)
    return chosen
