// Pinned saved searches as a list of links into the explorer, for the Home page:
//   import { PinnedSearches } from "./searches-pinned.js";  ...  <${PinnedSearches} limit=${8} />
// It loads GET /api/searches?pinned=true itself (the caller's own and those shared with a role they hold)
// and renders only the list (or a short note when there is none); the heading is the Home page's.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { showError } from "../errors.js";

export function PinnedSearches({ limit = 10 }) {
  const [items, setItems] = useState(null);
  useEffect(() => {
    let live = true;
    api("/searches", { params: { pinned: "true" } })
      .then((r) => live && setItems(r.items))
      .catch((e) => {
        if (live) setItems([]);
        showError(e, "The pinned searches could not load");
      });
    return () => {
      live = false;
    };
  }, []);
  if (items === null) return html`<p class="muted" aria-busy="true">Loading pinned searches…</p>`;
  if (!items.length)
    return html`<p class="muted" data-testid="pinned-empty">No pinned searches yet: pin one on the <a href="/searches">Saved searches</a> page.</p>`;
  return html`
    <ul class="pinned-searches" data-testid="pinned-searches">
      ${items.slice(0, limit).map(
        (s) => html`<li key=${s.id}>
          <a href=${s.query ? `/?${s.query}` : "/"} data-testid="pinned-search" data-search-id=${s.id}>${s.name}</a>
          ${!s.mine && html` <span class="muted small">by ${s.owner_name}</span>`}
        </li>`,
      )}
      ${items.length > limit && html`<li><a href="/searches?show=pinned">All ${items.length} pinned searches</a></li>`}
    </ul>
  `;
}
