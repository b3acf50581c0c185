// Small helpers: times (always UTC), numbers, JSON values and the old -> new diff.

const NUMBER = new Intl.NumberFormat("en-US");

export const fmtNumber = (n) => NUMBER.format(n);

/** "2026-11-01 12:34:56" (UTC) from an ISO-8601 time; the input itself when it is not a time. */
export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 19).replace("T", " ");
}

/** An ISO-8601 UTC time without milliseconds: what the API's time filters take. */
export function isoSeconds(ms) {
  return new Date(Math.round(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** "2026-11-01T12:34" for an <input type="datetime-local"> that we read as UTC. */
export function toLocalInput(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 19);
}

/** The value of an <input type="datetime-local">, read as UTC, as ISO-8601; "" when empty or invalid. */
export function fromLocalInput(value) {
  if (!value) return "";
  const text = value.length === 16 ? `${value}:00` : value;
  const d = new Date(`${text}Z`);
  return Number.isNaN(d.getTime()) ? "" : isoSeconds(d.getTime());
}

/** A short span such as "5 min", "1 h", "7 d". */
export function fmtSpan(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 360) / 10} h`;
  return `${Math.round(seconds / 8640) / 10} d`;
}

/** A value that is JSON text (as Graph's modifiedProperties carry) parsed; anything else as is. */
export function parseMaybeJson(value) {
  if (typeof value !== "string") return value;
  const t = value.trim();
  const first = t[0];
  if (first === "{" || first === "[" || first === '"') {
    try {
      return JSON.parse(t);
    } catch {
      return value;
    }
  }
  return value;
}

const isObject = (v) => v !== null && typeof v === "object";

export function deepEqual(a, b) {
  if (a === b) return true;
  if (!isObject(a) || !isObject(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

const isPrimitiveArray = (v) => Array.isArray(v) && v.every((x) => !isObject(x));

/**
 * Paths (JSON-pointer-like, "" for the whole value) that differ between old and new, per side:
 * keys only in one side, leaves that differ, and for arrays of plain values the members only one side has.
 */
export function changedPaths(oldValue, newValue) {
  const oldSet = new Set();
  const newSet = new Set();
  const walk = (a, b, path) => {
    if (isPrimitiveArray(a) && isPrimitiveArray(b)) {
      const inB = new Set(b.map((x) => JSON.stringify(x)));
      const inA = new Set(a.map((x) => JSON.stringify(x)));
      a.forEach((x, i) => inB.has(JSON.stringify(x)) || oldSet.add(`${path}/${i}`));
      b.forEach((x, i) => inA.has(JSON.stringify(x)) || newSet.add(`${path}/${i}`));
      return;
    }
    if (isObject(a) && isObject(b) && Array.isArray(a) === Array.isArray(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of keys) {
        const inA = Object.prototype.hasOwnProperty.call(a, k);
        const inB = Object.prototype.hasOwnProperty.call(b, k);
        if (inA && inB) walk(a[k], b[k], `${path}/${k}`);
        else if (inA) oldSet.add(`${path}/${k}`);
        else newSet.add(`${path}/${k}`);
      }
      return;
    }
    if (!deepEqual(a, b)) {
      if (a !== undefined && a !== null) oldSet.add(path);
      if (b !== undefined && b !== null) newSet.add(path);
    }
  };
  walk(oldValue, newValue, "");
  return { oldSet, newSet };
}

/** Pretty-printed JSON as lines, each with the path of the value it shows. */
export function jsonLines(value) {
  const out = [];
  const emit = (v, path, key, indent, last) => {
    const pad = "  ".repeat(indent);
    const label = key === null ? "" : `${JSON.stringify(key)}: `;
    const comma = last ? "" : ",";
    if (isObject(v)) {
      const isArr = Array.isArray(v);
      const entries = isArr ? v.map((x, i) => [i, x]) : Object.entries(v);
      if (!entries.length) {
        out.push({ path, text: `${pad}${label}${isArr ? "[]" : "{}"}${comma}` });
        return;
      }
      out.push({ path, text: `${pad}${label}${isArr ? "[" : "{"}`, container: true });
      entries.forEach(([k, x], i) => emit(x, `${path}/${k}`, isArr ? null : k, indent + 1, i === entries.length - 1));
      out.push({ path, text: `${pad}${isArr ? "]" : "}"}${comma}`, container: true });
      return;
    }
    out.push({ path, text: `${pad}${label}${v === undefined ? "null" : JSON.stringify(v)}${comma}` });
  };
  emit(value, "", null, 0, true);
  return out;
}

/** Whether a line at `path` lies in a changed subtree. */
export function inChanged(path, set) {
  if (set.has(path)) return true;
  for (const p of set) if (path.startsWith(`${p}/`) || p === "") return true;
  return false;
}

/** The changed paths as readable names ("conditions.users.includeUsers"), at most `max`. */
export function changedNames(oldSet, newSet, max = 8) {
  const names = new Set();
  for (const p of [...oldSet, ...newSet]) {
    const parts = p.split("/").filter(Boolean).filter((s) => !/^\d+$/.test(s));
    names.add(parts.join(".") || "(value)");
  }
  const all = [...names];
  return all.length > max ? [...all.slice(0, max), `+${all.length - max} more`] : all;
}

/** The payload of a JWT (unverified: only to decide which controls to show). */
export function jwtClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/** A random id for Idempotency-Key headers. */
export function requestId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
