// The results: a dense table, newest first, with continuation paging ("Load more").
import { html } from "htm/preact";
import { results, loadMore } from "../data.js";
import { filters, selectedId, selectEvent, stateHref } from "../state.js";
import { fmtTime } from "../util.js";

/** Moves the focus to the row of an event (after the detail panel closes). */
export function focusRow(id) {
  const rows = document.querySelectorAll("[data-testid='row']");
  for (const row of rows) {
    if (row.dataset.eventId === id) {
      const link = row.querySelector(".row-link");
      if (link) {
        link.focus();
        link.scrollIntoView({ block: "nearest" });
      }
      return;
    }
  }
}

export function actorText(actor) {
  if (!actor) return "";
  return actor.display || actor.upn || (actor.client_app && actor.client_app.name) || actor.id || "";
}

export function targetsText(targets) {
  return (targets || [])
    .map((t) => (t && (t.display || t.id)) || "")
    .filter(Boolean)
    .join(", ");
}

function open(e, id) {
  if (e.ctrlKey || e.metaKey || e.shiftKey || e.button === 1) return; // a new tab keeps the link's meaning
  e.preventDefault();
  selectEvent(id);
}

function Row({ event, selected }) {
  const actor = actorText(event.actor);
  const targets = targetsText(event.targets);
  const onRowClick = (e) => {
    if (e.target.closest("a, button")) return;
    const selection = window.getSelection && window.getSelection();
    if (selection && String(selection).length) return; // selecting text is not opening
    selectEvent(event.id);
  };
  return html`
    <tr
      data-testid="row"
      data-event-id=${event.id}
      class=${`row${selected ? " is-selected" : ""}${event.result === "failure" ? " is-failure" : ""}`}
      aria-current=${selected ? "true" : undefined}
      onClick=${onRowClick}
    >
      <td class="c-time">
        <a class="row-link" href=${stateHref(filters.value, event.id)} onClick=${(e) => open(e, event.id)}>
          <time datetime=${event.timestamp}>${fmtTime(event.timestamp)}</time>
        </a>
      </td>
      <td class="c-service">${event.service}</td>
      <td class="c-operation">${event.operation}</td>
      <td class="c-actor" title=${event.actor && event.actor.upn ? event.actor.upn : undefined}>${actor}</td>
      <td class="c-targets">${targets}</td>
      <td class="c-result"><span class=${`result result-${event.result || "unknown"}`}>${event.result}</span></td>
      <td class="c-summary">${event.summary}</td>
    </tr>
  `;
}

function more(before) {
  loadMore().then(() => {
    const active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    const links = document.querySelectorAll("[data-testid='row'] .row-link");
    if (links[before]) links[before].focus();
  });
}

export function Results() {
  const r = results.value;
  const sel = selectedId.value;
  return html`
    <div class="results-wrap">
      <table class="results" data-testid="results" aria-busy=${r.loading ? "true" : "false"}>
        <caption class="visually-hidden">
          Events, newest first. Down arrow from the search box reaches the first row, arrow keys move between rows, Enter opens the detail, Escape closes it.
        </caption>
        <thead>
          <tr>
            <th scope="col" class="c-time">Time (UTC)</th>
            <th scope="col" class="c-service">Service</th>
            <th scope="col" class="c-operation">Operation</th>
            <th scope="col" class="c-actor">Actor</th>
            <th scope="col" class="c-targets">Targets</th>
            <th scope="col" class="c-result">Result</th>
            <th scope="col" class="c-summary">Summary</th>
          </tr>
        </thead>
        <tbody>
          ${r.items.map((event) => html`<${Row} key=${event.id} event=${event} selected=${event.id === sel} />`)}
        </tbody>
      </table>
      ${!r.loading && !r.error && r.items.length === 0 &&
      html`<p class="empty" data-testid="no-results">No events match. Widen the time range or remove a filter.</p>`}
      ${r.loading && html`<p class="muted loading" aria-hidden="true">Searching…</p>`}
      ${r.continuation &&
      html`<div class="more">
        <button type="button" class="btn" data-testid="load-more" disabled=${r.loadingMore} onClick=${() => more(r.items.length)}>
          ${r.loadingMore ? "Loading…" : "Load more"}
        </button>
      </div>`}
      ${!r.loading && !r.continuation && r.items.length > 0 &&
      html`<p class="muted end" data-testid="end-of-results">End of results.</p>`}
    </div>
  `;
}
