// The transcript: a session's log grouped by model request, built incrementally (one `add` per event, in log
// order), so a live session of 10,000 events never rebuilds from the start.
//
// A model request is the span `span.model_request_start` .. `span.model_request_end`; what the agent wrote inside
// it (thinking, messages, tool calls) belongs to it. A tool's result, confirmation or hand-given answer arrives
// later in the log and is attached to the call it answers, so a call reads with its outcome. `pending` holds the
// calls the session waits on (the last `requires_action`), minus those answered since.

const CALLS = new Set(["agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"]);
const ANSWER_KEY = {
  "agent.tool_result": "tool_use_id",
  "user.tool_result": "tool_use_id",
  "agent.mcp_tool_result": "mcp_tool_use_id",
  "user.custom_tool_result": "custom_tool_use_id",
};
const INPUTS = new Set(["user.message", "system.message", "user.define_outcome", "user.interrupt"]);
const STATUS = new Set([
  "session.status_idle",
  "session.status_rescheduled",
  "session.status_terminated",
  "session.error",
  "session.deleted",
]);
const QUIET = new Set(["session.status_running", "session.usage", "session.updated"]);
// a coordinator's messages to and from its threads (multiagent sessions), shown as messages
const THREAD_MESSAGES = new Set(["agent.thread_message_sent", "agent.thread_message_received"]);
const THREAD_STATUS = new Set([
  "session.thread_created",
  "session.thread_status_running",
  "session.thread_status_idle",
  "session.thread_status_rescheduled",
  "session.thread_status_terminated",
]);

export class TranscriptBuilder {
  constructor() {
    this.items = []; // {kind: "input" | "request" | "status" | "outcome" | "thread" | "other", seq, event, ...}
    this.threadNames = new Map(); // thread id -> its agent's name, from `session.thread_created`
    this.calls = new Map(); // tool use id -> {event, seq, result, resultSeq, confirmation}
    this.pending = new Map(); // tool use id -> call, while the session waits for it
    this.open = null; // the request being written
    this.requests = 0;
  }

  _request(seq, start) {
    this.requests++;
    const request = { kind: "request", seq, start, end: null, parts: [], number: this.requests };
    this.items.push(request);
    return request;
  }

  add(event, seq) {
    const type = event.type;
    if (type === "span.model_request_start") {
      this.open = this._request(seq, event);
    } else if (type === "span.model_request_end") {
      const request = this.open || this._request(seq, null);
      request.end = event;
      request.endSeq = seq;
      this.open = null;
    } else if (type === "agent.message" || type === "agent.thinking" || CALLS.has(type)) {
      const request = this.open || this._request(seq, null);
      const part = { kind: type, event, seq, result: null, confirmation: null };
      if (CALLS.has(type)) this.calls.set(event.id, part);
      request.parts.push(part);
    } else if (type in ANSWER_KEY) {
      const id = event[ANSWER_KEY[type]];
      const call = this.calls.get(id);
      if (call) {
        call.result = event;
        call.resultSeq = seq;
        this.pending.delete(id);
      } else this.items.push({ kind: "other", seq, event });
    } else if (type === "user.tool_confirmation") {
      const call = this.calls.get(event.tool_use_id);
      if (call) call.confirmation = event;
      else this.items.push({ kind: "other", seq, event });
      this.pending.delete(event.tool_use_id);
    } else if (INPUTS.has(type)) {
      this.items.push({ kind: "input", seq, event });
    } else if (STATUS.has(type)) {
      if (type !== "session.error") this.pending.clear();
      const reason = event.stop_reason || {};
      if (type === "session.status_idle" && reason.type === "requires_action") {
        for (const id of reason.event_ids || []) {
          const call = this.calls.get(id);
          if (call && !call.result && !call.confirmation) this.pending.set(id, call);
        }
      }
      this.items.push({ kind: "status", seq, event });
    } else if (THREAD_MESSAGES.has(type) || THREAD_STATUS.has(type)) {
      if (type === "session.thread_created") this.threadNames.set(event.session_thread_id, event.agent_name);
      this.items.push({ kind: "thread", seq, event });
    } else if (type.startsWith("span.outcome_evaluation")) {
      this.items.push({ kind: "outcome", seq, event });
    } else if (type === "session.status_running") {
      this.pending.clear();
    } else if (!QUIET.has(type)) {
      this.items.push({ kind: "other", seq, event });
    }
  }
}

/** The text of a content list (text blocks; other blocks by their type). */
export function contentText(content) {
  if (!content) return "";
  if (typeof content === "string") return content;
  return content.map((block) => (block.type === "text" ? block.text : `[${block.type}]`)).join("\n");
}

/** One line saying what an event is, for the raw log. */
export function summary(event) {
  switch (event.type) {
    case "user.message":
    case "agent.message":
    case "system.message":
      return contentText(event.content);
    case "agent.tool_use":
    case "agent.custom_tool_use":
    case "agent.mcp_tool_use":
      return `${event.name}(${JSON.stringify(event.input || {})})${event.evaluated_permission === "ask" ? " asks" : ""}`;
    case "agent.tool_result":
    case "agent.mcp_tool_result":
    case "user.custom_tool_result":
    case "user.tool_result":
      return (event.is_error ? "error: " : "") + contentText(event.content);
    case "agent.thread_message_sent":
      return `to ${event.to_agent_name || event.to_session_thread_id}: ${contentText(event.content)}`;
    case "agent.thread_message_received":
      return `from ${event.from_agent_name || event.from_session_thread_id}: ${contentText(event.content)}`;
    case "session.thread_created":
      return `${event.agent_name} (${event.session_thread_id})`;
    case "user.tool_confirmation":
      return `${event.result}${event.deny_message ? ": " + event.deny_message : ""}`;
    case "session.status_idle":
      return (event.stop_reason && event.stop_reason.type) || "";
    case "session.error":
      return (event.error && (event.error.message || event.error.type)) || "";
    case "span.model_request_end": {
      const u = event.model_usage || {};
      return `${u.input_tokens ?? 0} in, ${u.output_tokens ?? 0} out${event.is_error ? ", failed" : ""}`;
    }
    default:
      return "";
  }
}
