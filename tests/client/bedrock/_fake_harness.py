"""A loopback Bedrock AgentCore harness, written from the wire spec (bedrock-agentcore-harness.md sections 2-11).

A real HTTP/1.1 server on 127.0.0.1 (`http.server`, one thread per connection) that:
- verifies every request's SigV4 signature with botocore, recomputed from the known secret over the path, query,
  body and exactly the headers named in `SignedHeaders` as received (a wrong secret gets 403 in the AWS shape);
- answers InvokeHarness with real `application/vnd.amazon.eventstream` frames (encoded here: botocore has only a
  decoder), in HTTP chunks split at arbitrary byte offsets, from a FIFO of scripted replies;
- validates requests like the service: ARN, session id (33-100), messages, inline tools, and the resume contract
  (the assistant toolUse echo present, toolUse/toolResult counts matched, no duplicate ids, only pending ids);
- keeps CreateHarness / GetHarness / ListHarnesses / DeleteHarness state with a scriptable status machine.
"""

from __future__ import annotations

import binascii
import hmac
import json
import re
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

REGION = "us-west-2"
ACCOUNT = "123456789012"
ACCESS_KEY = "AKIDLOOPHOSTTEST"
SECRET_KEY = "loophost-fake-secret"
HARNESS_ARN = f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT}:harness/loophost_test-AbCdE12345"

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_ARN = re.compile(r"arn:aws:bedrock-agentcore:[a-z0-9-]+:\d{12}:harness/[a-zA-Z][a-zA-Z0-9_]{0,39}-[a-zA-Z0-9]{10}")
_SESSION = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{32,99}")
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,39}")
_TOOL = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_BAD_TOKEN = "The security token included in the request is invalid."


# ------------------------------------------------------------------------------------------------ frames


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), string headers (type 7), payload, message CRC."""
    encoded = b"".join(
        struct.pack("!B", len(k.encode())) + k.encode() + struct.pack("!BH", 7, len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack("!II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


@dataclass(frozen=True)
class Frame:
    name: str
    body: Any
    kind: str = "event"

    def encode(self) -> bytes:
        payload = json.dumps(self.body).encode()
        if self.kind == "event":
            headers = {":message-type": "event", ":event-type": self.name, ":content-type": "application/json"}
        elif self.kind == "exception":
            headers = {":message-type": "exception", ":exception-type": self.name, ":content-type": "application/json"}
        else:
            headers = {":message-type": "error", ":error-code": self.name, ":error-message": self.body["message"]}
            payload = b""
        return encode_frame(headers, payload)


def event(name: str, body: Any) -> Frame:
    return Frame(name, body)


def exception(name: str, message: str, **extra: Any) -> Frame:
    return Frame(name, {"message": message, **extra}, kind="exception")


def error_frame(code: str, message: str) -> Frame:
    return Frame(code, {"message": message}, kind="error")


class Turn:
    """A readable builder of one invoke's frames."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def add(self, name: str, body: Any) -> Turn:
        self.frames.append(event(name, body))
        return self

    def start(self, role: str = "assistant") -> Turn:
        return self.add("messageStart", {"role": role})

    def text(self, index: int, *deltas: str) -> Turn:
        for delta in deltas:
            self.add("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": delta}})
        return self.add("contentBlockStop", {"contentBlockIndex": index})

    def tool(self, index: int, tool_id: str, name: str, *fragments: str, kind: str | None = "tool_use") -> Turn:
        start: dict[str, Any] = {"toolUseId": tool_id, "name": name}
        if kind is not None:
            start["type"] = kind
        self.add("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": start}})
        for fragment in fragments:
            self.add("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}})
        return self.add("contentBlockStop", {"contentBlockIndex": index})

    def result(self, index: int, tool_id: str, text: str, status: str = "success") -> Turn:
        start = {"contentBlockIndex": index, "start": {"toolResult": {"toolUseId": tool_id, "status": status}}}
        self.add("contentBlockStart", start)
        self.add("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolResult": [{"text": text}]}})
        return self.add("contentBlockStop", {"contentBlockIndex": index})

    def stop(self, reason: str) -> Turn:
        return self.add("messageStop", {"stopReason": reason})

    def metadata(self, inputs: int = 10, outputs: int = 5, **extra: int) -> Turn:
        usage = {"inputTokens": inputs, "outputTokens": outputs, "totalTokens": inputs + outputs, **extra}
        return self.add("metadata", {"usage": usage, "metrics": {"latencyMs": 42}})


def final_turn(*deltas: str, stop: str = "end_turn") -> list[Frame]:
    return Turn().start().text(0, *(deltas or ("done",))).stop(stop).metadata(20, 7, cacheReadInputTokens=3).frames


def tool_turn(tool_id: str = "tooluse_abc123", name: str = "get_weather", text: str = "Let me check.") -> list[Frame]:
    turn = Turn().start().text(0, text)
    return turn.tool(1, tool_id, name, '{"city": ', '"Paris"}').stop("tool_use").metadata().frames


# ------------------------------------------------------------------------------------------------ replies


@dataclass
class Stream:
    """A 200 event stream. `splits`: byte offsets where HTTP chunks break (default: one chunk per frame);
    `end`: "complete", "clean" (terminating chunk after `cut_at` bytes) or "drop" (connection closed mid-body);
    `corrupt`: index of a frame whose payload is flipped (bad message CRC); `pause`: seconds between chunks;
    `hold`: after the first chunk, the rest waits until this event is set (proves the client reads live)."""

    frames: Sequence[Frame]
    splits: Sequence[int] | None = None
    end: str = "complete"
    cut_at: int | None = None
    corrupt: int | None = None
    pause: float = 0.0
    hold: threading.Event | None = None


@dataclass
class Fail:
    status: int
    error_type: str
    message: str = "failed"
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Json:
    """A 2xx control-plane answer."""

    status: int
    body: Any


@dataclass
class Drop:
    """Close the connection without answering (a transport error before the stream)."""


Reply = Stream | Fail | Json | Drop


@dataclass
class Recorded:
    operation: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def signed_headers(self) -> list[str]:
        match = _AUTH.fullmatch(self.headers.get("authorization", ""))
        return match.group("signed").split(";") if match else []


@dataclass
class HarnessRecord:
    harness: dict[str, Any]
    ready_after: int = 1
    final_status: str = "READY"
    gone_after: int = 1
    polls: int = 0


class _Rejected(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


class FakeHarness:
    """The server. `script` is consumed one reply per accepted InvokeHarness (a callable gets the body)."""

    def __init__(self, *, token: str | None = None, secret: str = SECRET_KEY) -> None:
        self.token = token
        self.secret = secret
        self.script: deque[Reply | Callable[[Any], Reply]] = deque()
        self.requests: list[Recorded] = []
        self.pending: dict[str, list[str]] = {}
        self.harnesses: dict[str, HarnessRecord] = {}
        self.plans: deque[dict[str, Any]] = deque()
        self.control_faults: dict[str, deque[Fail]] = {}
        self.list_page_size = 2
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> FakeHarness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def push(self, *replies: Reply | Callable[[Any], Reply]) -> None:
        self.script.extend(replies)

    def invokes(self) -> list[Recorded]:
        return [r for r in self.requests if r.operation == "InvokeHarness"]

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests]

    def fail_control(self, operation: str, *fails: Fail) -> None:
        self.control_faults.setdefault(operation, deque()).extend(fails)

    def add_harness(self, name: str, status: str, **plan: Any) -> dict[str, Any]:
        harness_id = f"{name}-{_suffix(name)}"
        harness = {
            "harnessId": harness_id,
            "harnessName": name,
            "arn": f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT}:harness/{harness_id}",
            "status": status,
        }
        self.harnesses[harness_id] = HarnessRecord(harness, **plan)
        return harness

    # -- request handling (server threads) --------------------------------------------------------------------

    def handle(self, request: _Handler) -> None:
        raw_path = request.path
        parts = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        length = int(request.headers.get("Content-Length") or 0)
        content = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        operation = _operation(request.command, parts.path)
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = content
        with self._lock:
            self.requests.append(Recorded(operation, request.command, parts.path, query, headers, body))
        try:
            self._verify(request.command, raw_path, headers, content)
            if operation == "InvokeHarness":
                reply = self._invoke(headers, query, body)
            else:
                reply = self._control(operation, parts.path, query, body)
        except _Rejected as rejected:
            reply = Fail(rejected.status, rejected.error_type, rejected.message)
        _write(request, reply)

    def _verify(self, method: str, raw_path: str, headers: dict[str, str], content: bytes) -> None:
        match = _AUTH.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise _Rejected(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if match["key"] != ACCESS_KEY:
            raise _Rejected(403, "UnrecognizedClientException", _BAD_TOKEN)
        if match["service"] != "bedrock-agentcore" or match["region"] != REGION:
            raise _Rejected(403, "InvalidSignatureException", "Credential should be scoped to a valid region/service.")
        signed = match["signed"].split(";")
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise _Rejected(403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed") from None
        if abs((datetime.now(UTC) - when).total_seconds()) > 300 or amz_date[:8] != match["date"]:
            raise _Rejected(403, "InvalidSignatureException", "Signature expired")
        unsigned = [h for h in headers if (h.startswith("x-amz") or h in ("host", "content-type")) and h not in signed]
        if unsigned and unsigned != ["x-amzn-trace-id"]:
            raise _Rejected(403, "InvalidSignatureException", f"headers not signed: {unsigned}")
        if self.token is not None and headers.get("x-amz-security-token") != self.token:
            raise _Rejected(403, "UnrecognizedClientException", _BAD_TOKEN)
        wire = AWSRequest(method=method, url=f"http://{headers['host']}{raw_path}", data=content)
        for name in signed:
            wire.headers[name] = headers.get(name, "")
        wire.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(ACCESS_KEY, self.secret, self.token), "bedrock-agentcore", REGION)
        expected = auth.signature(auth.string_to_sign(wire, auth.canonical_request(wire)), wire)
        if not hmac.compare_digest(expected, match["signature"]):
            raise _Rejected(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )

    def _invoke(self, headers: dict[str, str], query: dict[str, str], body: Any) -> Reply:
        arn = query.get("harnessArn", "")
        if not _ARN.fullmatch(arn):
            raise _Rejected(400, "ValidationException", f"1 validation error: harnessArn {arn!r}")
        if arn != HARNESS_ARN and not any(
            h.harness["arn"] == arn and h.harness["status"] == "READY" for h in self.harnesses.values()
        ):
            raise _Rejected(404, "ResourceNotFoundException", f"Harness not found: {arn}")
        if "qualifier" in query and not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,47}", query["qualifier"]):
            raise _Rejected(400, "ValidationException", "qualifier")
        session = headers.get("x-amzn-bedrock-agentcore-runtime-session-id", "")
        if not _SESSION.fullmatch(session):
            raise _Rejected(400, "ValidationException", "runtimeSessionId: length must be at least 33")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise _Rejected(400, "ValidationException", "messages: required")
        _check_messages(body["messages"])
        _check_tools(body.get("tools", []))
        with self._lock:
            self._check_resume(session, body["messages"])
            reply = self.script.popleft() if self.script else Stream(final_turn("ok"))
            if callable(reply):
                reply = reply(body)
            if isinstance(reply, Stream) and reply.end == "complete" and reply.corrupt is None:
                self.pending[session] = _pending(reply.frames)
        return reply

    def _check_resume(self, session: str, messages: list[dict[str, Any]]) -> None:
        """The harness forgets an unanswered inline-tool turn: results need the echo, and must match it."""
        results = [b["toolResult"] for m in messages for b in m["content"] if "toolResult" in b]
        pending = self.pending.get(session, [])
        if not results:
            self.pending.pop(session, None)  # a new user message drops the unanswered turn
            return
        echo = messages[0] if messages[0]["role"] == "assistant" else None
        uses = [b["toolUse"] for b in echo["content"] if "toolUse" in b] if echo else []
        if len(uses) < len(results):
            raise _Rejected(
                400,
                "ValidationException",
                "The number of toolResult blocks at messages.1.content exceeds the number of toolUse blocks of "
                "previous turn.",
            )
        use_ids = [u["toolUseId"] for u in uses]
        result_ids = [r["toolUseId"] for r in results]
        if len(set(use_ids)) != len(use_ids) or len(set(result_ids)) != len(result_ids):
            raise _Rejected(400, "ValidationException", "duplicate Ids at messages.0.content")
        if sorted(use_ids) != sorted(result_ids) or sorted(result_ids) != sorted(pending):
            raise _Rejected(
                400, "ValidationException", f"toolResult ids {result_ids} do not answer the pending toolUse {pending}"
            )
        for use in uses:
            if not isinstance(use.get("input"), dict) or use.get("type") not in (None, "tool_use"):
                raise _Rejected(400, "ValidationException", "toolUse.input must be a JSON object")
        for result in results:
            if result.get("status") not in (None, "success", "error") or not result.get("content"):
                raise _Rejected(400, "ValidationException", "toolResult status/content")

    def _control(self, operation: str, path: str, query: dict[str, str], body: Any) -> Reply:
        with self._lock:
            faults = self.control_faults.get(operation)
            if faults:
                return faults.popleft()
            if operation == "CreateHarness":
                return self._create(body)
            if operation == "ListHarnesses":
                items = sorted(self.harnesses.values(), key=lambda h: h.harness["harnessId"])
                start = int(query.get("nextToken", "0"))
                page = [
                    {k: h.harness[k] for k in ("harnessId", "harnessName", "arn", "status")}
                    for h in items[start : start + self.list_page_size]
                ]
                more = start + self.list_page_size < len(items)
                return _json(200, {"harnesses": page, **({"nextToken": str(start + len(page))} if more else {})})
            record = self.harnesses.get(path.rsplit("/", 1)[1])
            if record is None:
                raise _Rejected(404, "ResourceNotFoundException", f"Harness {path} not found")
            if operation == "DeleteHarness":
                record.harness["status"], record.polls = "DELETING", 0
                return _json(200, {"harness": dict(record.harness)})
            record.polls += 1  # GetHarness: the status machine moves on each poll
            status = record.harness["status"]
            if status == "CREATING" and record.ready_after >= 0 and record.polls >= record.ready_after:
                record.harness["status"] = record.final_status
                if record.final_status.endswith("FAILED"):
                    record.harness["failureReason"] = "the execution role cannot be assumed"
            elif status == "DELETING" and record.polls > record.gone_after:
                del self.harnesses[record.harness["harnessId"]]
                raise _Rejected(404, "ResourceNotFoundException", f"Harness {path} not found")
            return _json(200, {"harness": dict(record.harness)})

    def _create(self, body: Any) -> Reply:
        name = body.get("harnessName", "") if isinstance(body, dict) else ""
        if not _NAME.fullmatch(name):
            raise _Rejected(400, "ValidationException", f"harnessName {name!r}")
        if not str(body.get("executionRoleArn", "")).startswith("arn:aws:iam::"):
            raise _Rejected(400, "ValidationException", "executionRoleArn")
        if not 33 <= len(body.get("clientToken", "x" * 33)) <= 256:
            raise _Rejected(400, "ValidationException", "clientToken")
        _check_tools(body.get("tools", []), inline_only=False)
        if any(h.harness["harnessName"] == name for h in self.harnesses.values()):
            raise _Rejected(409, "ConflictException", f"Harness with name {name} already exists")
        plan = self.plans.popleft() if self.plans else {}
        harness = self.add_harness(name, "CREATING", **plan)
        harness.update({k: body[k] for k in ("model", "systemPrompt", "tools", "executionRoleArn") if k in body})
        return _json(201, {"harness": dict(harness)})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    do_GET = do_POST
    do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _operation(method: str, path: str) -> str:
    if path == "/harnesses/invoke" and method == "POST":
        return "InvokeHarness"
    if path == "/harnesses":
        return {"POST": "CreateHarness", "GET": "ListHarnesses"}.get(method, "Unknown")
    if path.startswith("/harnesses/"):
        return {"GET": "GetHarness", "DELETE": "DeleteHarness"}.get(method, "Unknown")
    return "Unknown"


def _suffix(name: str) -> str:
    digest = binascii.crc32(f"{name}{time.monotonic_ns()}".encode())
    return f"{digest:010d}"[-10:].replace("0", "a")


def _json(status: int, body: Any) -> Json:
    return Json(status, body)


def _check_messages(messages: list[Any]) -> None:
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _Rejected(400, "ValidationException", f"messages.{index}.role")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise _Rejected(400, "ValidationException", f"messages.{index}.content")
        for block in content:
            if "text" in block and (not isinstance(block["text"], str) or not block["text"]):
                raise _Rejected(400, "ValidationException", f"messages.{index}.content.text: min length 1")


def _check_tools(tools: list[Any], *, inline_only: bool = True) -> None:
    for tool in tools:
        if inline_only and tool.get("type") != "inline_function":
            raise _Rejected(400, "ValidationException", f"tools: unexpected type {tool.get('type')}")
        if tool.get("type") == "inline_function":
            schema = tool.get("config", {}).get("inlineFunction", {}).get("inputSchema")
            if not _TOOL.fullmatch(tool.get("name", "")) or not isinstance(schema, dict):
                raise _Rejected(400, "ValidationException", "tools.name / inputSchema")


def _pending(frames: Sequence[Frame]) -> list[str]:
    """The inline toolUse ids the stream leaves waiting: the last message's, when it stopped with tool_use."""
    tools: list[str] = []
    stop = None
    for frame in frames:
        if frame.name == "messageStart":
            tools, stop = [], None
        elif frame.name == "contentBlockStart" and "toolUse" in frame.body["start"]:
            use = frame.body["start"]["toolUse"]
            if use.get("type") in (None, "tool_use") and use["toolUseId"] not in tools:
                tools.append(use["toolUseId"])
        elif frame.name == "messageStop":
            stop = frame.body["stopReason"]
    return tools if stop == "tool_use" else []


def _chunks(data: bytes, splits: Sequence[int]) -> Iterator[bytes]:
    edges = sorted({s for s in splits if 0 < s < len(data)})
    start = 0
    for edge in [*edges, len(data)]:
        yield data[start:edge]
        start = edge


def _write(request: _Handler, reply: Reply) -> None:
    if isinstance(reply, Drop):
        request.close_connection = True
        return
    if isinstance(reply, Fail | Json):
        body = {"message": reply.message, **reply.extra} if isinstance(reply, Fail) else reply.body
        content = json.dumps(body).encode()
        request.send_response(reply.status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(content)))
        request.send_header("x-amzn-RequestId", "fake-request-id")
        if isinstance(reply, Fail):
            request.send_header("x-amzn-ErrorType", f"{reply.error_type}:http://internal.amazon.com/coral/fake/")
        request.end_headers()
        request.wfile.write(content)
        return
    encoded = [frame.encode() for frame in reply.frames]
    if reply.corrupt is not None:
        bad = bytearray(encoded[reply.corrupt])
        bad[-5] ^= 0xFF
        encoded[reply.corrupt] = bytes(bad)
    data = b"".join(encoded)
    offsets = list(reply.splits) if reply.splits is not None else _frame_edges(encoded)
    if reply.cut_at is not None:
        data = data[: reply.cut_at]
    request.send_response(200)
    request.send_header("Content-Type", "application/vnd.amazon.eventstream")
    request.send_header("Transfer-Encoding", "chunked")
    request.send_header("x-amzn-RequestId", "fake-request-id")
    request.end_headers()
    for chunk in _chunks(data, offsets):
        request.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        request.wfile.flush()
        if reply.pause:
            time.sleep(reply.pause)
        if reply.hold is not None:
            reply.hold.wait(10)
    if reply.end == "drop":
        request.close_connection = True
        return
    request.wfile.write(b"0\r\n\r\n")
    request.wfile.flush()


def _frame_edges(encoded: Sequence[bytes]) -> list[int]:
    edges, total = [], 0
    for frame in encoded:
        total += len(frame)
        edges.append(total)
    return edges
