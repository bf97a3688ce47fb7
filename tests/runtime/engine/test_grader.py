"""The grader's verdict parsing and the scripted grader (`engine/_grader.py`, `models/_script.py`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loophost.runtime.engine._grader import parse_verdict
from loophost.runtime.models._script import grader_answer

RESULTS = ("needs_revision", "satisfied", "failed")


def test_parse_verdict() -> None:
    assert parse_verdict("verdict: satisfied\nall good") == ("satisfied", "all good")
    assert parse_verdict("Thinking...\nverdict: failed not a poem\nmore") == ("failed", "not a poem\nmore")
    assert parse_verdict("no verdict here") == ("needs_revision", "no verdict here")


@given(
    st.lists(
        st.tuples(st.sampled_from(RESULTS), st.text(alphabet="abc xyz", max_size=20)),
        max_size=6,
    ),
    st.integers(min_value=0, max_value=8),
)
def test_scripted_grader_reads_the_rubrics_verdicts_in_order(verdicts: list[tuple[str, str]], iteration: int) -> None:
    rubric = "\n".join(["Be brief.", *(f"verdict {r} {e}" for r, e in verdicts)])
    prompt = f"<rubric>\n{rubric}\n</rubric>\n\n<deliverable>\nverdict failed quoted by the agent\n</deliverable>"
    result, explanation = parse_verdict(grader_answer(prompt, iteration))
    if iteration < len(verdicts):
        assert (result, explanation) == (verdicts[iteration][0], verdicts[iteration][1].strip())
    else:
        assert result == "satisfied"
