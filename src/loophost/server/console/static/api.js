// The public API (/v1/...) from the browser. The console is an ordinary API client: it knows only what the API
// answers. The key the user pastes is kept in sessionStorage (this tab only, gone when the tab closes) and sent in
// the `x-api-key` header; it never goes into a URL, localStorage, a cookie or the console log.

const KEY_SLOT = "loophost.apiKey";
const listeners = new Set();

export function getKey() {
  return sessionStorage.getItem(KEY_SLOT);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_SLOT, key.trim());
  listeners.forEach((fn) => fn());
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_SLOT);
  listeners.forEach((fn) => fn());
}

/** Called whenever the key changes, or the server refuses it (401): the app shows the key form again. */
export function onKeyChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type;
    this.code = error.details && error.details.error_code;
  }
}

/** `/v1` + path with the query: arrays repeat as `name[]=` (the Claude wire's bracket form), empty values drop. */
export function apiUrl(path, query = {}) {
  const url = new URL("/v1" + path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(`${name}[]`, v));
    else url.searchParams.set(name, String(value));
  }
  return url;
}

export function authHeaders(extra = {}) {
  const key = getKey();
  return { "x-api-key": key || "", "anthropic-version": "2023-06-01", ...extra };
}

function refused(response) {
  if (response.status === 401) forgetKey();
}

/** One JSON call; an error envelope becomes an ApiError with its message. */
export async function api(path, { method = "GET", query, body, headers, signal } = {}) {
  const init = { method, headers: authHeaders(headers), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const response = await fetch(apiUrl(path, query), init);
  refused(response);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Every item of a cursor-paged list, following `next_page`. */
export async function listAll(path, query = {}, { signal } = {}) {
  const items = [];
  let page;
  do {
    const result = await api(path, { query: { ...query, page }, signal });
    items.push(...result.data);
    page = result.next_page;
  } while (page);
  return items;
}

/** Sends client events to a session (user.message, user.interrupt, user.tool_confirmation, ...). */
export function sendEvents(sessionId, events) {
  return api(`/sessions/${encodeURIComponent(sessionId)}/events`, { method: "POST", body: { events } });
}

/** Downloads a file's bytes with the key in a header (a plain link could not send it), then saves them. */
export async function download(fileId, filename) {
  const response = await fetch(apiUrl(`/files/${encodeURIComponent(fileId)}/content`), { headers: authHeaders() });
  refused(response);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename || fileId;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
