// Agents as code, in the browser: an agent as the spec `loophost apply -f` takes (the create request without what
// the server fills in), that spec as YAML, and a line diff between two versions.

/** Drops nulls, empty lists and empty objects, recursively: what a spec leaves out, the server defaults. */
export function prune(value) {
  if (Array.isArray(value)) return value.map(prune);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      const p = prune(v);
      if (p === null || p === undefined) continue;
      if (Array.isArray(p) && !p.length) continue;
      if (typeof p === "object" && !Array.isArray(p) && !Object.keys(p).length) continue;
      out[k] = p;
    }
    return out;
  }
  return value;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** A toolset without what its defaults already say: a config equal to `default_config` is left out (the server
 * fills it back in), and a built-in tool's `type` when it is its name. */
function compactTool(tool) {
  if (!tool || !Array.isArray(tool.configs) || !tool.default_config) return tool;
  const configs = [];
  for (const config of tool.configs) {
    const rest = { ...config };
    if (rest.type === rest.name) delete rest.type;
    const { name, enabled, permission_policy, ...extra } = rest;
    const plain = !Object.keys(extra).length;
    if (plain && enabled === tool.default_config.enabled && same(permission_policy, tool.default_config.permission_policy)) continue;
    configs.push(rest);
  }
  const out = { ...tool };
  if (configs.length) out.configs = configs;
  else delete out.configs;
  return out;
}

const FIELDS = ["name", "description", "model", "system", "tools", "mcp_servers", "skills", "metadata", "multiagent", "execution_identity"];

/** The create request for this agent version (same rules as `loophost agents export`). */
export function agentSpec(agent) {
  const spec = {};
  for (const field of FIELDS) {
    let value = prune(agent[field]);
    if (field === "tools" && value) value = value.map(compactTool);
    if (field === "model" && value && Object.keys(value).length === 1 && value.id) value = value.id;
    if (field === "execution_identity" && value && value.type === "service_account") continue;
    if (value === null || value === undefined) continue;
    if (typeof value === "object" && !Object.keys(value).length) continue;
    spec[field] = value;
  }
  return spec;
}

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_ ./@+-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const s = String(value);
  if (PLAIN.test(s) && !RESERVED.test(s) && !s.endsWith(" ")) return s;
  return JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
}

/** Block-style YAML: mappings and sequences indented by two, multi-line strings as literal blocks. */
export function toYaml(value, indent = "") {
  const lines = [];
  const emit = (v, pad, key) => {
    const head = key === undefined ? pad : `${pad}${scalar(key)}:`;
    if (Array.isArray(v)) {
      if (!v.length) return lines.push(`${head}${key === undefined ? "" : " "}[]`);
      if (key !== undefined) lines.push(head);
      for (const item of v) {
        const sub = toYaml(item, pad + "  ").split("\n");
        lines.push(`${pad}- ${sub[0].slice(pad.length + 2)}`, ...sub.slice(1));
      }
    } else if (v && typeof v === "object") {
      if (!Object.keys(v).length) return lines.push(`${head}${key === undefined ? "" : " "}{}`);
      if (key !== undefined) lines.push(head);
      for (const [k, item] of Object.entries(v)) emit(item, key === undefined ? pad : pad + "  ", k);
    } else if (typeof v === "string" && v.includes("\n")) {
      lines.push(`${head} |${v.endsWith("\n") ? "" : "-"}`);
      for (const line of v.replace(/\n$/, "").split("\n")) lines.push(line ? `${pad}  ${line}` : "");
    } else lines.push(key === undefined ? `${pad}${scalar(v)}` : `${head} ${scalar(v)}`);
  };
  emit(value, indent);
  return lines.join("\n");
}

/** Line diff (longest common subsequence): [{op: " " | "-" | "+", line}]. */
export function diffLines(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) out.push({ op: " ", line: a[i++] }), j++;
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ op: "-", line: a[i++] });
    else out.push({ op: "+", line: b[j++] });
  }
  while (i < n) out.push({ op: "-", line: a[i++] });
  while (j < m) out.push({ op: "+", line: b[j++] });
  return out;
}
