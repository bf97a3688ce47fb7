"""The runtime embedded in this process (`Local`): no server, no API key (the `scripted` model).

python examples/local.py
"""

from __future__ import annotations

import loophost


@loophost.tool
def word_count(text: str) -> int:
    """Count the words of a text (runs here, on your machine).

    Args:
        text: The text to count.
    """
    return len(text.split())


def main() -> None:
    # Local("loophost.db") keeps the sessions in a SQLite file; Local() keeps them in memory.
    result = loophost.run(
        loophost.Local(),
        model="scripted",
        handler=[word_count],
        prompt='call word_count {"text": "one loop, any host"}',
    )
    print(f"{result.terminal}: {result.text}")
    print(f"tool calls: {[use.name for use in result.tool_uses]}, turns: {result.turns}")


if __name__ == "__main__":
    main()
