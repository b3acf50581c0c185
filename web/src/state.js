// The explorer's state. Everything a user can set (filters, time range, selected event) lives in the
// URL's query string, so a reload or a shared link restores it; the signals below mirror the URL.
import { signal, computed } from "@preact/signals";

/** The services the API knows (shared/ingestion/events.py Service). */
export const SERVICES = [
  "Directory", "SignIns", "Intune", "Exchange", "SharePoint", "OneDrive", "Teams", "DLP", "Security",
  "PowerPlatform", "Purview", "VivaEngage", "Viva", "Copilot", "Forms", "Planner", "Stream", "Project", "Other",
];
export const RESULTS = ["success", "failure", "unknown"];
export const PRESETS = ["1h", "24h", "7d", "30d"];
export const DEFAULT_PRESET = "30d"; // what the API uses when no start is given

/** URL parameters holding one value (all but `event` are API filters as named). */
export const SINGLE = [
  "q", "start", "end", "operation", "operation_contains", "result", "actor", "target", "source",
  "category", "correlation_id",
];
/** URL parameters that repeat (API filters as named). */
export const MULTI = [
  "service", "tag", "exclude_tag", "exclude_service", "exclude_operation", "exclude_result", "exclude_actor",
  "exclude_source",
];
/** Older links' names for a parameter: read, merged into the current name, never written. */
const LEGACY = { not_service: "exclude_service" };
/** The most values the API takes per repeatable parameter. */
const MAX_VALUES = 20;

/** Facet fields and how a click maps to URL parameters: include param, exclude param (repeatable). */
export const FACET_FIELDS = {
  service: { include: "service", exclude: "exclude_service", multi: true },
  operation: { include: "operation", exclude: "exclude_operation" },
  result: { include: "result", exclude: "exclude_result" },
  actor: { include: "actor", exclude: "exclude_actor" },
  source: { include: "source", exclude: "exclude_source" },
};

/** The runtime configuration (/config.json). */
export const config = signal(null);
/** "loading" | "signed-out" | "ready" | "failed" */
export const bootState = signal("loading");

const PATH_EVENTS = ["/", "/events", "/index.html"];

function readLocation() {
  const sp = new URLSearchParams(window.location.search);
  const filters = {};
  for (const name of SINGLE) {
    const v = sp.get(name);
    if (v) filters[name] = v.slice(0, 2000);
  }
  for (const name of MULTI) {
    const legacy = Object.keys(LEGACY).filter((old) => LEGACY[old] === name);
    const all = [name, ...legacy].flatMap((n) => sp.getAll(n));
    const vs = [...new Set(all.filter(Boolean))];
    if (vs.length) filters[name] = vs.slice(0, MAX_VALUES);
  }
  return { path: window.location.pathname, search: window.location.search, filters, event: sp.get("event") || null };
}

export const route = signal(readLocation());
export const filters = computed(() => route.value.filters);
export const selectedId = computed(() => route.value.event);
export const isEventsPage = computed(() => PATH_EVENTS.includes(route.value.path));

window.addEventListener("popstate", () => {
  route.value = readLocation();
});

/** Go to a path and query within the console (pushState, or replaceState with `replace`). */
export function navigate(href, { replace = false } = {}) {
  if (href !== window.location.pathname + window.location.search) {
    window.history[replace ? "replaceState" : "pushState"](null, "", href);
    window.scrollTo(0, 0);
  }
  route.value = readLocation();
}

/** The address's query parameters, read through `route` so a component re-renders when they change (pages
 * other than the explorer keep their state here; the explorer's is `filters`). */
export const queryParams = () => new URLSearchParams(route.value.search);

/** The query string (without "?") of a state. Parameters in a stable order, so links compare equal. */
export function stateQuery(f, event) {
  const sp = new URLSearchParams();
  for (const name of SINGLE) if (f[name]) sp.set(name, f[name]);
  for (const name of MULTI) for (const v of f[name] || []) sp.append(name, v);
  if (event) sp.set("event", event);
  return sp.toString();
}

export function stateHref(f, event) {
  const qs = stateQuery(f, event);
  const path = route.value.path === "/index.html" ? "/" : route.value.path;
  return qs ? `${path}?${qs}` : path;
}

function go(f, event, replace) {
  const href = stateHref(f, event);
  if (href !== window.location.pathname + window.location.search) {
    window.history[replace ? "replaceState" : "pushState"](null, "", href);
  }
  route.value = readLocation();
}

/** Replace the filters (the selected event is kept only when asked). */
export function setFilters(f, { keepEvent = false, replace = false } = {}) {
  const clean = {};
  for (const [k, v] of Object.entries(f)) {
    if (Array.isArray(v) ? v.length : v) clean[k] = v;
  }
  go(clean, keepEvent ? route.value.event : null, replace);
}

/** Change some filters, keeping the others. `undefined`, "" or [] removes one. */
export function patchFilters(patch, options) {
  setFilters({ ...route.value.filters, ...patch }, options);
}

export function selectEvent(id, { replace = false } = {}) {
  go(route.value.filters, id, replace);
}

/** Whether a facet value is included or excluded now: "include" | "exclude" | null. */
export function facetState(field, value) {
  const spec = FACET_FIELDS[field];
  const f = route.value.filters;
  const inc = f[spec.include];
  if (spec.multi ? (inc || []).includes(value) : inc === value) return "include";
  if (spec.exclude && (f[spec.exclude] || []).includes(value)) return "exclude";
  return null;
}

/**
 * Toggle a facet value: a plain click includes it (or lifts it), with `exclude` it is excluded (or the
 * exclusion lifted). Including a value lifts its exclusion and the other way round. Returns false when
 * the API has no way to exclude by that field, or no room for one more value.
 */
export function toggleFacet(field, value, exclude) {
  const spec = FACET_FIELDS[field];
  const f = route.value.filters;
  const current = facetState(field, value);
  if (exclude && !spec.exclude) return false;
  const patch = {};
  const exc = (f[spec.exclude] || []).filter((v) => v !== value);
  if (exclude && current !== "exclude") {
    if (exc.length >= MAX_VALUES) return false;
    exc.push(value);
  }
  if (spec.exclude) patch[spec.exclude] = exc;
  if (spec.multi) {
    const inc = (f[spec.include] || []).filter((v) => v !== value);
    if (!exclude && current !== "include") {
      if (inc.length >= MAX_VALUES) return false;
      inc.push(value);
    }
    patch[spec.include] = inc;
  } else if (exclude) {
    if (current === "include") patch[spec.include] = "";
  } else {
    patch[spec.include] = current === "include" ? "" : value;
  }
  patchFilters(patch);
  return true;
}

/** The API's query parameters for the filters in the URL (paging excluded). */
export function apiFilters(f) {
  const params = {};
  for (const name of SINGLE) if (f[name]) params[name] = f[name];
  for (const name of MULTI) if (f[name] && f[name].length) params[name] = f[name];
  return params;
}

/** The time window the filters ask for, as a label ("Last 24 h", "2026-11-01 00:00 – ..."). */
export function presetOf(f) {
  if (!f.start && !f.end) return DEFAULT_PRESET;
  if (f.start && !f.end && PRESETS.includes(f.start)) return f.start;
  return "custom";
}
