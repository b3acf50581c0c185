// The event explorer: search, time range, filters, facets, histogram, results, export and detail.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ROLE, user } from "../auth.js";
import { api } from "../api.js";
import { showError } from "../errors.js";
import { fmtNumber, fmtTime, toLocalInput, fromLocalInput } from "../util.js";
import {
  filters, patchFilters, setFilters, selectedId, selectEvent, apiFilters, presetOf, config,
  PRESETS, RESULTS,
} from "../state.js";
import { results, histogram } from "../data.js";
import { Facets } from "./facets.js";
import { Histogram } from "./histogram.js";
import { Results, focusRow } from "./results.js";
import { Detail } from "./detail.js";

const PRESET_LABELS = { "1h": "1 hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days" };
const CHIP_LABELS = {
  q: "Text",
  operation: "Operation",
  operation_contains: "Operation contains",
  result: "Result",
  actor: "Actor",
  target: "Target",
  source: "Source",
  category: "Category",
  correlation_id: "Correlation id",
  service: "Service",
  exclude_service: "Not service",
  exclude_operation: "Not operation",
  exclude_result: "Not result",
  exclude_actor: "Not actor",
  exclude_source: "Not source",
  tag: "Tag",
  exclude_tag: "Not tag",
};

function SearchBar({ searchRef }) {
  const f = filters.value;
  const [q, setQ] = useState(f.q || "");
  useEffect(() => setQ(f.q || ""), [f.q]);
  const submit = (e) => {
    e.preventDefault();
    patchFilters({ q: q.trim() });
  };
  return html`
    <form class="searchbar" role="search" aria-label="Events" onSubmit=${submit}>
      <label for="search-q" class="visually-hidden">Search events</label>
      <input
        id="search-q"
        ref=${searchRef}
        type="search"
        class="search-input"
        data-testid="search"
        placeholder="Search summary, actor, target, operation (press /)"
        value=${q}
        maxlength="200"
        autocomplete="off"
        onInput=${(e) => setQ(e.currentTarget.value)}
      />
      <button type="submit" class="btn btn-primary" data-testid="search-submit">Search</button>
    </form>
  `;
}

function TimeRange() {
  const f = filters.value;
  const preset = presetOf(f);
  const [custom, setCustom] = useState(preset === "custom");
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  useEffect(() => {
    const isCustom = presetOf(f) === "custom";
    setCustom(isCustom);
    const h = histogram.peek();
    setStart(isCustom && f.start && !PRESETS.includes(f.start) ? toLocalInput(f.start) : h ? toLocalInput(h.from) : "");
    setEnd(isCustom && f.end ? toLocalInput(f.end) : h ? toLocalInput(h.to) : "");
  }, [f.start, f.end]);
  const pick = (p) => {
    setCustom(false);
    patchFilters({ start: p === "30d" ? "" : p, end: "" });
  };
  const openCustom = () => {
    const h = histogram.peek();
    if (!start && h) setStart(toLocalInput(h.from));
    if (!end && h) setEnd(toLocalInput(h.to));
    setCustom(true);
  };
  const apply = (e) => {
    e.preventDefault();
    const s = fromLocalInput(start);
    const en = fromLocalInput(end);
    if (!s) {
      showError({ title: "Choose a start time", detail: "The custom range needs a start (UTC)." });
      return;
    }
    patchFilters({ start: s, end: en });
  };
  return html`
    <div class="timerange">
      <div class="segmented" role="group" aria-label="Time range">
        ${PRESETS.map(
          (p) => html`<button
            type="button"
            class="seg"
            data-testid=${`time-${p}`}
            aria-pressed=${!custom && preset === p ? "true" : "false"}
            title=${`Last ${PRESET_LABELS[p]}`}
            onClick=${() => pick(p)}
          >
            ${p}<span class="visually-hidden"> (last ${PRESET_LABELS[p]})</span>
          </button>`,
        )}
        <button
          type="button"
          class="seg"
          data-testid="time-custom"
          aria-pressed=${custom ? "true" : "false"}
          aria-expanded=${custom ? "true" : "false"}
          aria-controls="custom-range"
          onClick=${openCustom}
        >
          Custom
        </button>
      </div>
      ${custom &&
      html`<form id="custom-range" class="custom-range" onSubmit=${apply} aria-label="Custom time range">
        <label>
          <span>From (UTC)</span>
          <input type="datetime-local" step="1" data-testid="time-start" value=${start} onInput=${(e) => setStart(e.currentTarget.value)} />
        </label>
        <label>
          <span>To (UTC)</span>
          <input type="datetime-local" step="1" data-testid="time-end" value=${end} onInput=${(e) => setEnd(e.currentTarget.value)} />
        </label>
        <button type="submit" class="btn" data-testid="time-apply">Apply</button>
      </form>`}
    </div>
  `;
}

const TEXT_FILTERS = [
  ["operation_contains", "Operation contains"],
  ["actor", "Actor (UPN or name)"],
  ["target", "Target"],
  ["source", "Source"],
  ["category", "Category"],
  ["correlation_id", "Correlation id"],
];

function FilterForm() {
  const f = filters.value;
  const initial = () => Object.fromEntries([...TEXT_FILTERS.map(([n]) => [n, f[n] || ""]), ["result", f.result || ""]]);
  const [values, setValues] = useState(initial);
  const [tag, setTag] = useState("");
  const signature = JSON.stringify([...TEXT_FILTERS.map(([n]) => f[n] || ""), f.result || ""]);
  useEffect(() => setValues(initial()), [signature]);
  const set = (name, value) => setValues((v) => ({ ...v, [name]: value }));
  const commit = (next = values) => {
    const patch = {};
    for (const [name, value] of Object.entries(next)) {
      const clean = value.trim();
      if (clean !== (f[name] || "")) patch[name] = clean;
    }
    if (Object.keys(patch).length) patchFilters(patch);
  };
  const addTag = (exclude) => {
    const t = tag.trim();
    if (!t) return;
    const inc = (f.tag || []).filter((x) => x !== t);
    const exc = (f.exclude_tag || []).filter((x) => x !== t);
    if (exclude) exc.push(t);
    else inc.push(t);
    setTag("");
    patchFilters({ tag: inc, exclude_tag: exc });
  };
  return html`
    <form
      class="filters"
      aria-label="Filters"
      onSubmit=${(e) => {
        e.preventDefault();
        commit();
      }}
    >
      ${TEXT_FILTERS.map(
        ([name, label]) => html`<div class="field" key=${name}>
          <label for=${`filter-${name}`}>${label}</label>
          <input
            id=${`filter-${name}`}
            type="text"
            data-testid=${`filter-${name}`}
            value=${values[name]}
            maxlength="200"
            autocomplete="off"
            onInput=${(e) => set(name, e.currentTarget.value)}
            onChange=${() => commit()}
          />
        </div>`,
      )}
      <div class="field">
        <label for="filter-result">Result</label>
        <select
          id="filter-result"
          data-testid="filter-result"
          value=${values.result}
          onChange=${(e) => {
            const next = { ...values, result: e.currentTarget.value };
            setValues(next);
            commit(next);
          }}
        >
          <option value="">Any</option>
          ${RESULTS.map((r) => html`<option value=${r}>${r}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="filter-tag">Tag</label>
        <div class="inline tag-field">
          <input
            id="filter-tag"
            type="text"
            data-testid="filter-tag"
            value=${tag}
            maxlength="64"
            autocomplete="off"
            onInput=${(e) => setTag(e.currentTarget.value)}
            onKeyDown=${(e) => {
              if (e.key === "Enter") {
                e.preventDefault();
                addTag(e.altKey || e.shiftKey);
              }
            }}
          />
          <button type="button" class="btn btn-small" data-testid="filter-tag-include" onClick=${() => addTag(false)}>Include</button>
          <button type="button" class="btn btn-small" data-testid="filter-tag-exclude" onClick=${() => addTag(true)}>Exclude</button>
        </div>
      </div>
      <button type="submit" class="btn" data-testid="filters-apply">Apply filters</button>
    </form>
  `;
}

function chipText(name, value) {
  if (name === "start" || name === "end") return fmtTime(value);
  return value;
}

function ActiveFilters() {
  const f = filters.value;
  const chips = [];
  for (const [name, label] of Object.entries(CHIP_LABELS)) {
    const v = f[name];
    if (!v) continue;
    for (const value of Array.isArray(v) ? v : [v]) chips.push({ name, label, value });
  }
  const remove = (c) => {
    const v = f[c.name];
    patchFilters({ [c.name]: Array.isArray(v) ? v.filter((x) => x !== c.value) : "" });
  };
  const preset = presetOf(f);
  const h = histogram.value;
  const range =
    preset === "custom"
      ? `${f.start ? (PRESETS.includes(f.start) ? `last ${PRESET_LABELS[f.start]}` : fmtTime(f.start)) : "30 days before end"} – ${f.end ? fmtTime(f.end) : "now"}`
      : `last ${PRESET_LABELS[preset]}`;
  return html`
    <div class="chips" data-testid="active-filters">
      <span class="chip chip-time" data-testid="time-range" title=${h ? `${fmtTime(h.from)} – ${fmtTime(h.to)} UTC` : undefined}>
        Time: ${range}
      </span>
      ${chips.map(
        (c) => html`<span
          class=${`chip${c.name.startsWith("exclude_") ? " chip-not" : ""}`}
          key=${`${c.name}=${c.value}`}
          data-testid=${`chip-${c.name}-${c.value}`}
        >
          <span>${c.label}: ${chipText(c.name, c.value)}</span>
          <button type="button" class="chip-x" aria-label=${`Remove filter ${c.label}: ${c.value}`} onClick=${() => remove(c)}>
            ×
          </button>
        </span>`,
      )}
      ${(chips.length > 0 || preset !== "30d") &&
      html`<button type="button" class="btn btn-quiet btn-small" data-testid="clear-filters" onClick=${() => setFilters({})}>
        Clear all
      </button>`}
    </div>
  `;
}

function RoleNote() {
  const u = user.value;
  if (!u || u.roles.has(ROLE.reader)) return null;
  return html`<p class="note" data-testid="no-role-note" role="note">
    Your account holds none of the console's roles (Reader, Analyst, Admin). Ask an administrator to assign one
    on the API's app registration, then sign in again.
  </p>`;
}

function PrivacyNote() {
  const u = user.value;
  const hidden = results.value.hidden;
  if (!u || u.roles.has(ROLE.privacy)) return null;
  let text;
  if (hidden && typeof hidden === "object") {
    const services = hidden.services || [];
    const operations = Number(hidden.operations) || 0;
    if (!services.length && !operations) return null;
    const parts = [];
    if (services.length) parts.push(`events from ${services.join(", ")}`);
    if (operations) parts.push(operations === 1 ? "one operation" : `${operations} operations`);
    text = `Some events are hidden: ${parts.join(" and ")} are marked sensitive, and seeing them needs the Privacy role (AOC.Privacy), which you do not have.`;
  } else if (hidden === undefined) {
    text =
      "Events from services your organisation marks as sensitive are hidden from you: seeing them needs the Privacy role (AOC.Privacy). Counts, facets and exports leave them out too.";
  } else return null;
  return html`<p class="note note-privacy" data-testid="privacy-note" role="note">${text}</p>`;
}

function ResultCount() {
  const r = results.value;
  const h = histogram.value;
  let text;
  if (r.loading) text = "Searching…";
  else if (r.error) text = "The search failed.";
  else {
    const shown = r.items.length;
    const total = h && h.key === r.key && typeof h.total === "number" ? h.total : null;
    if (total !== null) text = shown < total ? `${fmtNumber(total)} events, showing ${fmtNumber(shown)}` : `${fmtNumber(total)} events`;
    else if (r.continuation) text = `More than ${fmtNumber(shown)} events`;
    else text = `${fmtNumber(shown)} ${shown === 1 ? "event" : "events"}`;
    if (total === 1) text = "1 event";
  }
  return html`<p class="count" data-testid="result-count" role="status" aria-live="polite">${text}</p>`;
}

function filenameFrom(response, format) {
  const cd = response.headers.get("Content-Disposition") || "";
  const m = /filename="?([^";]+)"?/.exec(cd);
  return m ? m[1] : `events.${format === "csv" ? "csv" : "jsonl"}`;
}

function ExportButtons() {
  const [busy, setBusy] = useState(null);
  const [status, setStatus] = useState(null);
  const cfg = config.value || {};
  const cap = status && status.cap ? status.cap : cfg.exportMaxEvents || null;
  const run = async (format) => {
    setBusy(format);
    try {
      const params = { ...apiFilters(filters.value), format };
      const response = await api("/events/export", { params, as: "response", headers: { Accept: "*/*" } });
      const blob = await response.blob();
      const count = Number(response.headers.get("X-AOC-Export-Count"));
      const exportCap = Number(response.headers.get("X-AOC-Export-Cap")) || null;
      const truncated = response.headers.get("X-AOC-Export-Truncated") === "true";
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = filenameFrom(response, format);
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
      setStatus({ count: Number.isFinite(count) ? count : null, cap: exportCap, truncated, format });
    } catch (error) {
      showError(error, "The export failed");
    } finally {
      setBusy(null);
    }
  };
  let text = cap ? `Exports stop at ${fmtNumber(cap)} events.` : "Exports stop at the server's cap.";
  if (status && status.count !== null) {
    text = `Exported ${fmtNumber(status.count)} events as ${status.format === "csv" ? "CSV" : "NDJSON"}${
      status.truncated ? `: cut at the cap of ${fmtNumber(status.cap)}; narrow the filter for the rest.` : "."
    }${status.cap && !status.truncated ? ` Cap: ${fmtNumber(status.cap)}.` : ""}`;
  }
  return html`
    <div class="export" role="group" aria-label="Export">
      <button type="button" class="btn btn-small" data-testid="export-csv" disabled=${busy !== null} onClick=${() => run("csv")}>
        ${busy === "csv" ? "Exporting…" : "Export CSV"}
      </button>
      <button type="button" class="btn btn-small" data-testid="export-ndjson" disabled=${busy !== null} onClick=${() => run("jsonl")}>
        ${busy === "jsonl" ? "Exporting…" : "Export NDJSON"}
      </button>
      <span class="export-status" data-testid="export-status" role="status">${text}</span>
    </div>
  `;
}

/** "Save search": names the current state; the dialog (pages/searches-save.js) loads on first use. */
function SaveSearch() {
  const [Dialog, setDialog] = useState(null);
  const button = useRef(null);
  const u = user.value;
  if (!u || !u.roles.has(ROLE.reader)) return null;
  const open = () =>
    import("../pages/searches-save.js")
      .then((m) => setDialog(() => m.SaveSearchDialog))
      .catch((error) => showError(error, "Saving searches could not load"));
  const close = () => {
    setDialog(null);
    if (button.current) button.current.focus();
  };
  return html`
    <button type="button" class="btn" ref=${button} data-testid="save-search" aria-haspopup="dialog" onClick=${open}>Save search</button>
    ${Dialog && html`<${Dialog} onClose=${close} />`}
  `;
}

const isTyping = (el) => Boolean(el && el.closest && el.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"));

export function Explorer() {
  const searchRef = useRef(null);
  const [wide] = useState(() => window.matchMedia("(min-width: 900px)").matches);
  useEffect(() => {
    const onKey = (e) => {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
      const target = e.target;
      if (e.key === "/" && !isTyping(target)) {
        e.preventDefault();
        if (searchRef.current) {
          searchRef.current.focus();
          searchRef.current.select();
        }
      } else if (e.key === "Escape" && selectedId.value) {
        e.preventDefault();
        const id = selectedId.value;
        selectEvent(null);
        requestAnimationFrame(() => focusRow(id));
      } else if (e.key === "ArrowDown" && !e.shiftKey && target === searchRef.current) {
        // From the search box straight into the results; arrows in the other text fields stay theirs.
        const first = document.querySelector("[data-testid='row'] .row-link");
        if (!first) return;
        e.preventDefault();
        first.focus();
        first.scrollIntoView({ block: "nearest" });
      } else if ((e.key === "ArrowDown" || e.key === "ArrowUp") && !isTyping(target)) {
        const inResults = target && target.closest && target.closest("[data-testid='results']");
        const onPage = !target || target === document.body || target === document.documentElement;
        if (!inResults && !onPage) return;
        e.preventDefault();
        const rows = [...document.querySelectorAll("[data-testid='row'] .row-link")];
        if (!rows.length) return;
        const current = rows.indexOf(document.activeElement);
        const next = current < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, current + (e.key === "ArrowDown" ? 1 : -1)));
        rows[next].focus();
        rows[next].scrollIntoView({ block: "nearest" });
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
  const detailOpen = Boolean(selectedId.value);
  return html`
    <main id="main" class=${`explorer${detailOpen ? " with-detail" : ""}`} tabindex="-1">
      <h1 class="visually-hidden">Events</h1>
      <div class="toolbar">
        <${SearchBar} searchRef=${searchRef} />
        <${TimeRange} />
        <${SaveSearch} />
      </div>
      <div class="layout">
        <details class="sidebar" open=${wide}>
          <summary class="sidebar-toggle">Filters and facets</summary>
          <div class="sidebar-body">
            <${FilterForm} />
            <${Facets} />
          </div>
        </details>
        <section class="content" aria-label="Results">
          <${ActiveFilters} />
          <${RoleNote} />
          <${PrivacyNote} />
          <${Histogram} />
          <div class="results-head">
            <${ResultCount} />
            <${ExportButtons} />
          </div>
          <${Results} />
        </section>
      </div>
    </main>
    <${Detail} />
  `;
}
