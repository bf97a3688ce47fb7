"""Local tools: `@tool` turns a plain function into a declared, validated tool; a handler groups them.

The JSON Schema comes from the type hints (pydantic) and the parameter descriptions from the docstring
(griffe, as pydantic-ai does), so the declaration the model sees and the validation the call gets cannot
drift apart.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_type_hints

from ._results import ToolSpec

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ("Tool", "ToolCallContext", "tool")


@dataclass(frozen=True, slots=True)
class ToolCallContext:
    """Passed to a tool that asks for it (a parameter annotated `ToolCallContext`)."""

    session_id: str
    tool_use_id: str
    provider: str
    context: Any = None
    """The run's `context=` value, for the caller's own state (clients, credentials, ...)."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    is_error: bool = False


@dataclass(slots=True)
class Tool:
    """A local tool: its declaration, and how to validate and call it."""

    name: str
    description: str
    function: Callable[..., Any]
    input_model: type[BaseModel] | None = None
    context_param: str | None = None
    _schema: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def input_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = _schema_of(self.input_model) if self.input_model is not None else {"type": "object"}
        return self._schema

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.input_schema)

    async def call(self, tool_input: Mapping[str, Any], ctx: ToolCallContext) -> ToolOutcome:
        """Validate the input, call the function (sync ones on a worker thread), and say what came of it.

        Never raises: a bad input or an exception becomes an error outcome the model can read.
        """
        from pydantic import ValidationError

        kwargs: dict[str, Any]
        if self.input_model is not None:
            try:
                validated = self.input_model.model_validate(dict(tool_input))
            except ValidationError as exc:
                return ToolOutcome(f"Invalid input for tool {self.name!r}: {_errors_text(exc)}", is_error=True)
            kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        else:
            kwargs = dict(tool_input)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        try:
            if inspect.iscoroutinefunction(self.function):
                value = await self.function(**kwargs)
            else:
                value = await asyncio.to_thread(self.function, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            return ToolOutcome(f"Tool {self.name!r} raised {type(exc).__name__}: {exc}", is_error=True)
        return ToolOutcome(_to_text(value))


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Declare a local tool: `@tool`, or `@tool(name=..., description=...)`.

    The decorated function stays callable as before; `tools_of` and handlers find its `Tool` on it.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__loophost_tool__ = make_tool(fn, name=name, description=description)  # type: ignore[attr-defined]
        return fn

    return decorate(function) if function is not None else decorate


def make_tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> Tool:
    """Build the `Tool` of a function (a bound method works too: `self` is not part of the input)."""
    from pydantic import ConfigDict, Field, create_model

    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    summary, param_docs = _docstring(fn)
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is ToolCallContext:
            context_param = param.name
            continue
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name)))
    tool_name = name or fn.__name__
    model = create_model(f"{tool_name}_input", __config__=ConfigDict(extra="forbid"), **fields)
    return Tool(
        name=tool_name,
        description=description or summary or tool_name,
        function=fn,
        input_model=model,
        context_param=context_param,
    )


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The description and per-parameter descriptions of a docstring (Google, NumPy or Sphinx style)."""
    doc = inspect.getdoc(fn)
    if not doc:
        return "", {}
    if not any(marker in doc for marker in ("Args:", "Arguments:", "Parameters", ":param")):
        return doc.strip(), {}
    from griffe import Docstring, DocstringSectionKind

    parser: Any
    if ":param" in doc:
        parser = "sphinx"
    elif "Parameters\n" in doc:
        parser = "numpy"
    else:
        parser = "google"
    sections = Docstring(doc, lineno=1, parser=parser).parse(warnings=False)
    summary = " ".join(s.value for s in sections if s.kind == DocstringSectionKind.text).strip()
    params: dict[str, str] = {}
    for section in sections:
        if section.kind == DocstringSectionKind.parameters:
            for item in section.value:
                params[item.name] = item.description
    return summary, params


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def _errors_text(exc: Any) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "input"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    from pydantic_core import to_json

    try:
        return to_json(value).decode()
    except Exception:
        return json.dumps(value, default=str)


def tools_of(handler: Any) -> list[Tool]:
    """The tools a handler declares: a list of functions, or an object (or class) with tool methods.

    On an object, methods marked `@tool` are its tools; when none is marked, every public method except
    the hooks (`confirm`, `on_event`) is. A bare dispatch callable `(name, input, ctx)` declares none.
    """
    if handler is None:
        return []
    if isinstance(handler, Tool):
        return [handler]
    if isinstance(handler, Iterable) and not isinstance(handler, str | bytes | Mapping):
        return [_as_tool(item) for item in handler]
    if inspect.isfunction(handler) or inspect.ismethod(handler):
        marked = getattr(handler, "__loophost_tool__", None)
        return [marked] if marked is not None else []
    owner = handler() if inspect.isclass(handler) else handler
    members = [
        (attr, getattr(owner, attr))
        for attr in dir(type(owner))
        if not attr.startswith("_") and callable(getattr(owner, attr, None))
    ]
    marked_names = {attr for attr, member in members if hasattr(member, "__loophost_tool__")}
    found: list[Tool] = []
    for attr, member in members:
        if attr in _HOOKS or (marked_names and attr not in marked_names):
            continue
        declared: Tool | None = getattr(member, "__loophost_tool__", None)
        if declared is not None:
            found.append(make_tool(member, name=declared.name, description=declared.description))
        else:
            found.append(make_tool(member))
    return found


_HOOKS = frozenset({"confirm", "on_event", "handle_tool_call"})


def _as_tool(item: Any) -> Tool:
    if isinstance(item, Tool):
        return item
    declared = getattr(item, "__loophost_tool__", None)
    if declared is not None:
        return declared
    if callable(item):
        return make_tool(item)
    raise TypeError(f"not a tool: {item!r} (expected a function or a @tool)")


def dispatch_function(handler: Any) -> Callable[..., Any] | None:
    """The handler's catch-all `(name, input, ctx)` callable, if it is one (or has `handle_tool_call`)."""
    if handler is None or isinstance(handler, Iterable | Tool):
        return None
    if inspect.isfunction(handler) and getattr(handler, "__loophost_tool__", None) is None:
        return handler
    method = getattr(handler, "handle_tool_call", None)
    return method if callable(method) else None
