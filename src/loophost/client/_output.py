"""Structured output: a terminal tool whose input schema is the output type's, validated on the client.

The agent finishes by calling the tool; a call that does not validate gets an error result saying what was
wrong, so the model can correct itself (a bounded number of times). An agent that ends its turn without a
valid call is re-prompted, also bounded.
"""

from __future__ import annotations

from typing import Any

from ._errors import OutputValidationError
from ._tools import Tool

__all__ = ("OutputTool",)


class OutputTool:
    def __init__(self, output_type: Any, *, name: str, max_retries: int) -> None:
        from pydantic import TypeAdapter

        self.output_type = output_type
        self.max_retries = max_retries
        self._adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema = self._adapter.json_schema()
        if schema.get("type") != "object":
            raise TypeError(f"output_type must describe a JSON object (a pydantic model, a dataclass): {output_type}")
        schema.pop("title", None)
        description = schema.pop("description", None) or "the final result"
        self.tool = Tool(
            name=name,
            description=f"Call this tool exactly once, last, with {description}. It ends your task.",
            function=self._record,
            input_model=None,
            _schema=schema,
        )
        self.value: Any = None
        self.has_value = False
        self.invalid_attempts = 0
        self.last_error = ""

    def reset(self) -> None:
        self.value, self.has_value, self.invalid_attempts, self.last_error = None, False, 0, ""

    @property
    def exhausted(self) -> bool:
        """More invalid calls than allowed: the loop stops with `OutputValidationError`."""
        return self.invalid_attempts > self.max_retries

    async def _record(self, **arguments: Any) -> str:
        from pydantic import ValidationError

        try:
            value = self._adapter.validate_python(arguments)
        except ValidationError as exc:
            self.invalid_attempts += 1
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            self.last_error = errors
            raise ValueError(
                f"invalid {self.tool.name} input, fix it and call {self.tool.name} again: {errors}"
            ) from None
        self.value, self.has_value = value, True
        return "Result recorded."

    def reprompt(self) -> str:
        return f"You ended without calling {self.tool.name}. You MUST call {self.tool.name} now to finish."

    def fail(self, session_id: str) -> None:
        detail = f" (last error: {self.last_error})" if self.last_error else ""
        if self.exhausted:
            message = f"{self.tool.name} was called with invalid input {self.invalid_attempts} times{detail}"
        else:
            message = f"the agent ended without a valid {self.tool.name} call{detail}"
        raise OutputValidationError(message, session_id=session_id)
