// A session's files: what it wrote (session-scoped files, e.g. /mnt/session/outputs) and what is mounted in it.

import { useState } from "preact/hooks";
import { download, listAll } from "../api.js";
import { ErrorNote, fmtTime, html, useLoad } from "../ui.js";

function DownloadButton({ file }) {
  const [error, setError] = useState(null);
  return html`<button class="quiet" onClick=${() => download(file.id, file.filename).catch(setError)}>
      Download <span class="visually-hidden">${file.filename}</span></button
    ><${ErrorNote} error=${error} />`;
}

export function FilesPanel({ sessionId }) {
  const [outputs, outputsError, reload] = useLoad(() => listAll("/files", { scope_id: sessionId, limit: 1000 }), [sessionId]);
  const [resources, resourcesError] = useLoad(() => listAll(`/sessions/${encodeURIComponent(sessionId)}/resources`), [sessionId]);
  return html`<div class="files">
    <h2>Written by the session</h2>
    <${ErrorNote} error=${outputsError} />
    <button class="quiet" onClick=${reload}>Refresh</button>
    <table class="grid">
      <thead><tr><th scope="col">File</th><th scope="col">Size</th><th scope="col">Type</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${(outputs || []).map(
          (f) => html`<tr key=${f.id}><td>${f.filename}<div class="sub">${f.id}</div></td><td class="num">${f.size_bytes}</td>
            <td>${f.mime_type}</td><td>${fmtTime(f.created_at)}</td><td><${DownloadButton} file=${f} /></td></tr>`,
        )}
        ${outputs && !outputs.length && html`<tr><td colspan="5" class="empty">No files yet.</td></tr>`}
      </tbody>
    </table>
    <h2>Mounted</h2>
    <${ErrorNote} error=${resourcesError} />
    <table class="grid">
      <thead><tr><th scope="col">Resource</th><th scope="col">Type</th><th scope="col">Mount path</th></tr></thead>
      <tbody>
        ${(resources || []).map(
          (r) => html`<tr key=${r.id}><td>${r.file_id || r.url || r.id}</td><td>${r.type}</td><td>${r.mount_path || ""}</td></tr>`,
        )}
        ${resources && !resources.length && html`<tr><td colspan="3" class="empty">Nothing mounted.</td></tr>`}
      </tbody>
    </table>
  </div>`;
}
