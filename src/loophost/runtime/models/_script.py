"""The scripted model's directive language: one user message, read line by line.

Kept apart from the model so the grammar is small, pure and testable on its own. See
`docs/architecture.md`, "The scripted model".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

FailureKind = Literal["transient", "fatal"]

_CALL = re.compile(r"^call\s+(\S+)(?:\s+(.*))?$")
_SLEEP = re.compile(r"^sleep\s+(\d+)$")
_FAIL_TRANSIENT = re.compile(r"^fail\s+transient\s+(\d+)$")
_FAIL_FATAL = re.compile(r"^fail\s+fatal$")
_OUTPUT = re.compile(r"^output(?:\s+(.*))?$")


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One `call NAME {json}` line.

    `args` is the decoded JSON object, or the raw text when it is not a JSON object: pydantic-ai then
    rejects it like any malformed model output, and the tool answers with a retry (`NAME failed: ...`).
    """

    name: str
    args: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class Script:
    """The directives of one user message, in line order."""

    calls: tuple[ScriptedCall, ...] = ()
    sleep_ms: int = 0
    failures: tuple[tuple[FailureKind, int], ...] = ()
    """`fail` lines in order, as (kind, how many requests fail that way)."""
    output: str | None = None
    """The raw JSON of the last `output {json}` line, if any."""
    lines: tuple[tuple[str, bool], ...] = ()
    """Non-directive lines as (line, is_output); `output` lines are text unless output is structured."""

    def failure_at(self, index: int) -> FailureKind | None:
        """How the `index`-th model request for this message fails (0-based), or `None` if it proceeds."""
        for kind, count in self.failures:
            if index < count:
                return kind
            index -= count
        return None

    def text(self, *, output_is_directive: bool) -> str:
        """The message's text: its non-directive lines joined with newlines, stripped."""
        kept = [line for line, is_output in self.lines if not (is_output and output_is_directive)]
        return "\n".join(kept).strip()


def _call_args(raw: str | None) -> dict[str, Any] | str:
    if raw is None or not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(decoded, dict):
        return decoded
    return raw


def parse_script(text: str) -> Script:
    """Read the directives out of a user message; anything that is not one is text."""
    calls: list[ScriptedCall] = []
    failures: list[tuple[FailureKind, int]] = []
    lines: list[tuple[str, bool]] = []
    sleep_ms = 0
    output: str | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if match := _CALL.match(line):
            calls.append(ScriptedCall(match.group(1), _call_args(match.group(2))))
        elif match := _SLEEP.match(line):
            sleep_ms += int(match.group(1))
        elif match := _FAIL_TRANSIENT.match(line):
            failures.append(("transient", int(match.group(1))))
        elif _FAIL_FATAL.match(line):
            failures.append(("fatal", 1))
        elif match := _OUTPUT.match(line):
            output = (match.group(1) or "").strip()
            lines.append((raw_line, True))
        else:
            lines.append((raw_line, False))
    return Script(
        calls=tuple(calls),
        sleep_ms=sleep_ms,
        failures=tuple(failures),
        output=output,
        lines=tuple(lines),
    )


_VERDICT_LINE = re.compile(r"^verdict\s+(needs_revision|satisfied|failed)\b[ \t]*(.*)$")
_RUBRIC = re.compile(r"<rubric>\n?(.*?)\n?</rubric>", re.DOTALL)


def grader_answer(prompt: str, iteration: int) -> str:
    """The scripted grader's answer to grading `iteration` (0-based): the rubric's `verdict RESULT explanation`
    lines are the verdicts of iterations 0, 1, 2 ... in order; with no such line left it is satisfied. Only the
    `<rubric>` section of the grader's prompt is read when there is one (the deliverable may quote anything)."""
    match = _RUBRIC.search(prompt)
    rubric = match.group(1) if match else prompt
    verdicts = [m for line in rubric.splitlines() if (m := _VERDICT_LINE.match(line.strip()))]
    if iteration < len(verdicts):
        verdict = verdicts[iteration]
        return f"verdict: {verdict.group(1)}\n{verdict.group(2).strip()}".strip()
    return "verdict: satisfied\nNo verdict line left in the rubric."


_THEN = re.compile(r"^[ \t]*then[ \t]*$", re.MULTILINE)


def split_steps(text: str) -> list[str]:
    """A message's steps: the text between `then` lines (one step when there is none)."""
    return _THEN.split(text)


def count_words(text: str) -> int:
    """Whitespace-separated words: the scripted model's deterministic token count."""
    return len(text.split())
