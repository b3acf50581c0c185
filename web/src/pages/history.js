// Object history: every event that touched one object (as its actor or a target), across all sources,
// newest first, with each event's changed properties as a diff. State in the address: /history?id=&start=&end=
import { html } from "htm/preact";
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { navigate, queryParams } from "../state.js";
import { fmtTime, isoSeconds } from "../util.js";
import { actorText } from "../components/results.js";
import { PropertyDiff, historyHref, isObjectId } from "../components/detail.js";

const RANGES = [
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["", "Last 30 days"],
  ["90d", "Last 90 days"],
  ["365d", "Last year"],
];
const DAY = 86400000;
const EMPTY = { items: [], object: null, continuation: null, hidden: null, start: "", end: "" };

/** The explorer showing this event, in a day either side of it. */
function explorerHref(event) {
  const t = Date.parse(event.timestamp);
  if (Number.isNaN(t)) return pageHref("events", { event: event.id });
  return pageHref("events", { start: isoSeconds(t - DAY), end: isoSeconds(Math.min(Date.now(), t + DAY) + 1000), event: event.id });
}

/** The changes an event made to the object: its own target's, or every target's when it is the actor. */
function changes(event, id) {
  const targets = (event.targets || []).filter((t) => (t.modified_properties || []).length);
  const own = targets.filter((t) => t.id === id);
  return own.length ? own : targets;
}

function Event({ event, id }) {
  const actor = event.actor || {};
  const who = actorText(actor) || "an unknown actor";
  const whoId = actor.id || actor.upn;
  const self = actor.id === id || actor.upn === id;
  const changed = changes(event, id);
  return html`
    <li class="history-event" data-testid="history-event" data-event-id=${event.id}>
      <div class="history-head">
        <a href=${explorerHref(event)} data-testid="history-event-link"><time datetime=${event.timestamp}>${fmtTime(event.timestamp)}</time></a>
        <strong class="history-op">${event.operation}</strong>
        <span data-testid="history-actor">by ${whoId && !self && isObjectId(whoId) ? html`<a href=${historyHref(whoId, event.timestamp)}>${who}</a>` : who}</span>
        <span class=${`result result-${event.result || "unknown"}`}>${event.result}</span>
        <span class="muted">${event.service}${event.source ? ` · ${event.source}` : ""}</span>
      </div>
      ${event.summary && html`<p class="history-summary">${event.summary}</p>`}
      ${changed.map(
        (t, i) => html`<div class="diff history-diff" key=${i} data-testid="history-diff">
          ${(changed.length > 1 || t.id !== id) && html`<p class="diff-name">${t.display || t.id}</p>`}
          ${t.modified_properties.map((p, j) => html`<${PropertyDiff} key=${j} prop=${p} />`)}
        </div>`,
      )}
    </li>
  `;
}

function OpenForm() {
  const [value, setValue] = useState("");
  const open = (e) => {
    e.preventDefault();
    if (value.trim()) navigate(pageHref("history", { id: value.trim() }));
  };
  return html`<form class="inline" onSubmit=${open}>
    <label for="history-id-input">Object id</label>
    <input id="history-id-input" data-testid="history-id-input" value=${value} maxlength="200" onInput=${(e) => setValue(e.currentTarget.value)} />
    <button type="submit" class="btn" data-testid="history-open">Open</button>
  </form>`;
}

export function Page() {
  const params = queryParams();
  const id = params.get("id") || "";
  const start = params.get("start") || "";
  const end = params.get("end") || "";
  const [state, setState] = useState({ ...EMPTY, loading: Boolean(id) });
  const inflight = useRef(null);

  const load = (continuation) => {
    if (inflight.current) inflight.current.abort();
    const controller = new AbortController();
    inflight.current = controller;
    setState((s) => ({ ...(continuation ? s : EMPTY), loading: true }));
    api(`/objects/${encodeURIComponent(id)}/history`, {
      params: { start, end, continuation },
      signal: controller.signal,
    })
      .then((page) => {
        const before = state.items.length;
        setState((s) => ({
          ...page,
          object: continuation ? s.object : page.object,
          items: continuation ? [...s.items, ...page.items] : page.items,
          loading: false,
        }));
        // "Load more" may vanish with the last page: the keyboard moves on to the first new event.
        if (continuation) requestAnimationFrame(() => document.querySelectorAll("[data-testid='history-event-link']")[before]?.focus());
      })
      .catch((error) => {
        if (controller.signal.aborted) return;
        setState((s) => ({ ...s, loading: false, error }));
        showError(error, "The history could not be loaded");
      });
  };

  // Layout effect: the request leaves before the first paint, not a frame after it.
  useLayoutEffect(() => {
    if (id) load(null);
    return () => inflight.current && inflight.current.abort();
  }, [id, start, end]);

  const range = end || (start && !RANGES.some(([v]) => v === start)) ? "custom" : start;
  const setRange = (e) => navigate(pageHref("history", { id, start: e.currentTarget.value }));
  const o = state.object;
  const names = o ? o.names : [];
  const hidden = state.hidden;
  return html`
    <main id="main" class="page history" data-testid="history" aria-busy=${state.loading ? "true" : "false"}>
      <h1>${id ? html`History of <span data-testid="history-name">${names[0] || id}</span>` : "Object history"}</h1>
      ${!id && html`<p>Open it from an event's actor or target in the <a href="/">explorer</a>, or give the object's id.</p><${OpenForm} />`}
      ${id &&
      html`<p class="history-meta">
          <span class="muted">Id </span><code data-testid="history-id">${id}</code>
          ${o && o.types.length ? html` <span class="muted">· type </span><span data-testid="history-types">${o.types.join(", ")}</span>` : ""}
          ${names.length > 1 ? html` <span class="muted">· also named </span>${names.slice(1).join(", ")}` : ""}
          ${o && o.aliases.length
            ? html` <span class="muted">· its other ids (a history each): </span>${o.aliases.map(
                (a, i) => html`${i ? ", " : ""}<a href=${pageHref("history", { id: a, start, end })} data-testid="history-alias">${a}</a>`,
              )}`
            : ""}
        </p>
        <div class="inline">
          <label for="history-range">Time range</label>
          <select id="history-range" data-testid="history-range" value=${range} onChange=${setRange}>
            ${RANGES.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
            ${range === "custom" && html`<option value="custom" disabled>${fmtTime(state.start || start)} – ${fmtTime(state.end || end) || "now"}</option>`}
          </select>
        </div>
        ${hidden &&
        html`<p class="note" data-testid="history-hidden" role="note">
          Events from ${[...hidden.services, hidden.operations ? "sensitive operations" : ""].filter(Boolean).join(" and ")} are hidden:
          seeing them needs the Privacy role (AOC.Privacy).
        </p>`}
        <p role="status" class="muted" data-testid="history-count">
          ${state.loading && !state.items.length
            ? "Loading…"
            : state.error && !state.items.length
            ? "The history could not be loaded (the message is above)."
            : `${state.items.length}${state.continuation ? "+" : ""} event${state.items.length === 1 ? "" : "s"} from ${fmtTime(state.start)} to ${fmtTime(state.end)} UTC, newest first`}
        </p>
        <ol class="history-list">
          ${state.items.map((e) => html`<${Event} key=${e.id} event=${e} id=${id} />`)}
        </ol>
        ${!state.loading && !state.error && !state.items.length &&
        html`<p class="empty" data-testid="history-empty">No event touched this object in this range. Ids match exactly: try a longer range, or the object's other id (a user's UPN or object id).</p>`}
        ${state.continuation &&
        html`<div class="more">
          <button type="button" class="btn" data-testid="history-load-more" disabled=${state.loading} onClick=${() => load(state.continuation)}>
            ${state.loading ? "Loading…" : "Load more"}
          </button>
        </div>`}
        ${!state.loading && !state.continuation && state.items.length > 0 && html`<p class="muted end" data-testid="history-end">End of the history in this range.</p>`}`}
    </main>
  `;
}
