// The explorer's "Save search" dialog: names the explorer's current state (its query string), shares it
// or not, pins it or not. Loaded on first use, so the explorer's own chunk carries none of it.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { filters, stateQuery } from "../state.js";
import { pageHref } from "../pages.js";
import { Dialog, SearchForm, describeQuery, saveSearch } from "./searches-form.js";

export function SaveSearchDialog({ onClose }) {
  const [query] = useState(() => stateQuery(filters.value));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [saved, setSaved] = useState(null);
  const closeRef = useRef(null);
  useEffect(() => saved && closeRef.current && closeRef.current.focus(), [saved]);
  const submit = async (fields) => {
    setBusy(true);
    setError("");
    try {
      setSaved(await saveSearch({ ...fields, query }));
    } catch (e) {
      setError(e.detail || e.message || "The search could not be saved.");
    } finally {
      setBusy(false);
    }
  };
  return html`
    <${Dialog} title="Save search" testid="save-search-dialog" onClose=${onClose}>
      <p class="search-query muted" data-testid="save-search-query">${describeQuery(query)}</p>
      ${saved
        ? html`<p role="status" data-testid="save-search-status">
              Saved “${saved.name}”${saved.visibility === "role" ? `, shared with ${saved.role}` : ""}${saved.pinned ? ", pinned" : ""}.
              <a href=${pageHref("searches")} onClick=${onClose}>Saved searches</a>
            </p>
            <button type="button" class="btn" data-testid="save-search-close" ref=${closeRef} onClick=${onClose}>Close</button>`
        : html`<${SearchForm} submitLabel="Save" busy=${busy} error=${error} onSubmit=${submit} onCancel=${onClose} />`}
    <//>
  `;
}
