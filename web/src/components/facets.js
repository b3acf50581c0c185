// Facet values with counts (GET /api/events/facets). A click includes a value (or lifts it); Alt- or
// Shift-click excludes it (the API's exclude_<field> parameter), for every facet.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { facets, facetsError } from "../data.js";
import { FACET_FIELDS, facetState, toggleFacet } from "../state.js";
import { fmtNumber } from "../util.js";
import { showError } from "../errors.js";

const TITLES = { service: "Service", operation: "Operation", result: "Result", actor: "Actor", source: "Source" };
const SHOWN = 8;

function FacetGroup({ field, values }) {
  const [all, setAll] = useState(false);
  const spec = FACET_FIELDS[field];
  const list = all ? values : values.slice(0, SHOWN);
  const hint = spec.exclude ? "Click to include, Alt- or Shift-click to exclude" : "Click to include or lift";
  const onClick = (e, value) => {
    const exclude = e.altKey || e.shiftKey;
    if (!toggleFacet(field, value, exclude)) {
      showError({ title: "Cannot exclude", detail: `The API cannot exclude by ${TITLES[field].toLowerCase()}; include values instead.` });
    }
  };
  const headingId = `facet-h-${field}`;
  return html`
    <section class="facet" aria-labelledby=${headingId}>
      <h2 id=${headingId} class="facet-title" title=${hint}>${TITLES[field]}</h2>
      <ul class="facet-list">
        ${list.map(({ value, count }) => {
          const state = facetState(field, value);
          return html`<li key=${value}>
            <button
              type="button"
              class=${`facet-item${state ? ` is-${state}` : ""}`}
              data-testid=${`facet-${field}-${value}`}
              data-state=${state || "none"}
              aria-pressed=${state === "include" ? "true" : "false"}
              title=${hint}
              onClick=${(e) => onClick(e, value)}
            >
              <span class="facet-value">${state === "exclude" ? "not " : ""}${value}</span>
              <span class="facet-count"><span class="visually-hidden">: </span>${fmtNumber(count)}<span class="visually-hidden"> events</span></span>
            </button>
          </li>`;
        })}
      </ul>
      ${values.length > SHOWN &&
      html`<button type="button" class="btn btn-quiet btn-small" aria-expanded=${all ? "true" : "false"} onClick=${() => setAll(!all)}>
        ${all ? "Show fewer" : `Show all ${values.length}`}
      </button>`}
    </section>
  `;
}

export function Facets() {
  const data = facets.value;
  if (facetsError.value) return html`<p class="muted">Facets are unavailable.</p>`;
  if (!data) return html`<p class="muted" aria-busy="true">Loading facets…</p>`;
  return html`
    <div class="facets" data-testid="facets">
      <p class="muted facet-hint">Counts cover all stored events. Alt- or Shift-click any value to exclude it.</p>
      ${Object.keys(FACET_FIELDS)
        .filter((field) => (data[field] || []).length)
        .map((field) => html`<${FacetGroup} key=${field} field=${field} values=${data[field]} />`)}
    </div>
  `;
}
