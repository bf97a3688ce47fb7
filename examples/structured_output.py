"""Structured output: `output_type` adds a terminal tool whose schema is the model's; invalid calls are sent
back to the agent with what was wrong, and `result.output` is the validated instance.

    python examples/structured_output.py
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import loophost


class Forecast(BaseModel):
    city: str
    temperature_c: int = Field(description="Degrees Celsius, a whole number")


def main() -> None:
    # The scripted model plays a model that gets it wrong once: the first call fails validation, the
    # client answers with the error, and the second call (after `then`) is accepted.
    prompt = (
        'call final_result {"city": "Paris", "temperature_c": "warm"}\n'
        "then\n"
        'call final_result {"city": "Paris", "temperature_c": 21}'
    )
    result = loophost.run(loophost.Local(), model="scripted", output_type=Forecast, prompt=prompt)
    print(repr(result.output))


if __name__ == "__main__":
    main()
