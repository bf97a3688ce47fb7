// A session's event log, live: the persisted log listed from the start, then the SSE stream followed.
//
// EventSource cannot send an auth header, so the stream is read with fetch() and parsed here. Promises kept:
// - the log is complete and in server order: `events[i]` has seq i + 1 (seqs start at 1 and have no holes);
// - no event is shown twice: every persisted event is deduplicated by its id;
// - after a drop (network, server restart) the stream is reopened with `Last-Event-ID` = the last event held, so
//   the server replays exactly what was missed; the stream ends for good only after `session.status_terminated`
//   or `session.deleted`.
// Previews (`event_start` / `event_delta`, never persisted) build the text of a message still being written; the
// persisted `agent.message` with the same id replaces it.
// A feed follows the session's log, or with `threadId` one child thread's own log (a multiagent session's lane):
// `/threads/{tid}/events` and `/threads/{tid}/stream`, with the same promises. With `follow: false` it lists
// the log once and opens no stream (a lane of a thread that is not running: the browser has few connections).

import { apiUrl, authHeaders, forgetKey, listAll } from "./api.js";
import { TranscriptBuilder } from "./transcript.js";

const DELTAS = ["agent.message", "agent.thinking"];
const TERMINAL = new Set(["session.status_terminated", "session.deleted"]);

/** The frames of a `text/event-stream` body: `{id, event, data}` per blank-line-terminated block. */
export async function* sseFrames(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const frame = { id: null, event: "message", data: "" };
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") data.push(value);
          else if (field === "id") frame.id = value;
          else if (field === "event") frame.event = value;
        }
        frame.data = data.join("\n");
        yield frame;
      }
      if (signal && signal.aborted) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

export class SessionFeed {
  constructor(sessionId, onChange, { threadId = null, follow = true } = {}) {
    this.sessionId = sessionId;
    this.threadId = threadId;
    this.follow = follow;
    const base = `/sessions/${encodeURIComponent(sessionId)}`;
    const thread = threadId ? `${base}/threads/${encodeURIComponent(threadId)}` : null;
    this._listPath = thread ? `${thread}/events` : `${base}/events`;
    this._streamPath = thread ? `${thread}/stream` : `${base}/events/stream`;
    this.onChange = onChange;
    this.events = [];
    this.index = new Map(); // event id -> position in `events`
    this.previews = new Map(); // message id -> text streamed so far
    this.transcript = new TranscriptBuilder();
    this.state = "loading"; // loading | live | reconnecting | ended | listed (follow: false) | error
    this.error = null;
    this.connections = 0; // streams opened so far (the first, then one per reconnect)
    this.version = 0; // bumped on every change, for renderers
    this.threadEvents = 0; // `session.thread_*` events held: the thread list is re-read when this changes
    this._abort = new AbortController();
    this._timer = null;
  }

  start() {
    this._run().catch((error) => {
      if (!this._abort.signal.aborted) this._set("error", error);
    });
    return this;
  }

  stop() {
    this._abort.abort();
    clearTimeout(this._timer);
  }

  get lastId() {
    return this.events.length ? this.events[this.events.length - 1].id : null;
  }

  /** At most one render per 30 ms however fast events arrive (a replay of 10,000 is one burst). */
  _changed() {
    this.version++;
    if (this._timer === null) {
      this._timer = setTimeout(() => {
        this._timer = null;
        this.onChange(this);
      }, 30);
    }
  }

  _set(state, error = null) {
    this.state = state;
    this.error = error;
    this._changed();
  }

  /** Adds persisted events not held yet, in order; returns whether the session has ended. */
  _add(event) {
    if (this.index.has(event.id)) return false;
    this.index.set(event.id, this.events.length);
    this.events.push(event);
    this.transcript.add(event, this.events.length);
    if (event.type.startsWith("session.thread_")) this.threadEvents++;
    if (event.type === "agent.message" || event.type === "agent.thinking") this.previews.delete(event.id);
    this._changed();
    return TERMINAL.has(event.type);
  }

  _preview(kind, data) {
    if (kind === "event_start") {
      const event = data.event || {};
      if (!this.index.has(event.id)) this.previews.set(event.id, { type: event.type, text: "" });
    } else if (kind === "event_delta") {
      const preview = this.previews.get(data.event_id);
      const content = (data.delta && data.delta.content) || {};
      if (preview) preview.text += content.text || content.thinking || "";
    }
    this._changed();
  }

  async _catchUp() {
    const signal = this._abort.signal;
    const listed = await listAll(this._listPath, { limit: 1000 }, { signal });
    let ended = false;
    for (const event of listed) ended = this._add(event) || ended;
    return ended;
  }

  async _run() {
    const signal = this._abort.signal;
    if (await this._catchUp()) return this._set("ended");
    if (!this.follow) return this._set("listed");
    let delay = 250;
    while (!signal.aborted) {
      let failure = null;
      try {
        const resume = this.lastId;
        const headers = authHeaders({ accept: "text/event-stream" });
        if (resume) headers["Last-Event-ID"] = resume;
        const url = apiUrl(this._streamPath, { event_deltas: DELTAS });
        const response = await fetch(url, { headers, signal, cache: "no-store" });
        if (response.status === 401) return forgetKey();
        if (response.status === 404) return this._set("ended", new Error("the session no longer exists"));
        if (!response.ok) throw new Error(`stream answered HTTP ${response.status}`);
        this.connections++;
        this.previews.clear();
        this._set("live");
        delay = 250;
        // with nothing held there was no cursor: the stream starts at attach, so read what came before it
        if (!resume && (await this._catchUp())) return this._set("ended");
        for await (const frame of sseFrames(response.body, signal)) {
          if (frame.event === "ping") continue;
          if (frame.event === "error") throw new Error(JSON.parse(frame.data).error?.message || "stream error");
          const data = JSON.parse(frame.data);
          if (frame.event === "event_start" || frame.event === "event_delta") this._preview(frame.event, data);
          else if (this._add(data)) return this._set("ended");
        }
      } catch (error) {
        if (signal.aborted) return;
        failure = error;
      }
      // the server closed the stream (a restart) or the connection dropped: back off, then resume
      this._set("reconnecting", failure);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 4000);
    }
  }
}
