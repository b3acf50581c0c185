// The Saved searches page: the caller's searches and those shared with a role they hold. Each opens in
// the explorer; its owner renames, re-shares, pins, unpins and deletes it, each change under its ETag.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { showError } from "../errors.js";
import { navigate, queryParams } from "../state.js";
import { pageHref } from "../pages.js";
import { fmtTime } from "../util.js";
import { Dialog, SearchForm, ROLE_NAMES, describeQuery, fieldsOf, openHref, saveSearch } from "./searches-form.js";

const SHOW = { all: "All", mine: "Mine", shared: "Shared with me", pinned: "Pinned" };
const KEEP = { all: () => true, mine: (s) => s.mine, shared: (s) => !s.mine, pinned: (s) => s.pinned };
const STALE = "It changed since this list was loaded (someone else, or another tab). The list now shows it as it is: try again.";

/** Focus a button of a search's row. */
function rowButton(id, testid) {
  const el = document.querySelector(`[data-search-id="${id}"] [data-testid="${testid}"]`);
  if (el) el.focus();
}

export function Page() {
  const show = KEEP[queryParams().get("show")] ? queryParams().get("show") : "all";
  const [items, setItems] = useState(null);
  const [editing, setEditing] = useState(null);
  const [formError, setFormError] = useState("");
  const [busy, setBusy] = useState(null); // id of the search a call is changing
  const [confirming, setConfirming] = useState(null);
  const [status, setStatus] = useState("");
  const heading = useRef(null);

  const load = () =>
    api("/searches")
      .then((r) => setItems(r.items))
      .catch((e) => {
        setItems((current) => current || []);
        showError(e, "The saved searches could not load");
      });
  useEffect(() => {
    load();
  }, []);

  useEffect(() => {
    if (confirming) rowButton(confirming, "search-delete-confirm");
  }, [confirming]);
  const failed = (e, what) => {
    if (e.status === 412) {
      setStatus(STALE);
      load();
    } else showError(e, what);
  };
  const change = async (item, fields, done) => {
    setBusy(item.id);
    try {
      const saved = await saveSearch(fields, item);
      setItems((list) => list.map((x) => (x.id === saved.id ? saved : x)));
      setStatus(`Saved “${saved.name}”.`);
      if (done) done();
    } catch (e) {
      if (done && e.status !== 412) setFormError(e.detail || e.message);
      else {
        if (done) done();
        failed(e, "The search could not be saved");
      }
    } finally {
      setBusy(null);
    }
  };
  const remove = async (item) => {
    setBusy(item.id);
    try {
      await api(`/searches/${item.id}`, { method: "DELETE", headers: { "If-Match": item.etag } });
      setItems((list) => list.filter((x) => x.id !== item.id));
      setStatus(`Deleted “${item.name}”.`);
      if (heading.current) heading.current.focus();
    } catch (e) {
      failed(e, "The search could not be deleted");
    } finally {
      setBusy(null);
      setConfirming(null);
    }
  };

  const shown = (items || []).filter(KEEP[show]);
  return html`
    <main id="main" class="page searches-page">
      <h1 ref=${heading} tabindex="-1">Saved searches</h1>
      <p class="muted">
        Save a search from the <a href="/">event explorer</a> (“Save search”). Yours can be renamed, shared with a
        role, pinned to the home page and deleted; those shared with you open as they are.
      </p>
      <div class="segmented" role="group" aria-label="Show">
        ${Object.entries(SHOW).map(
          ([id, label]) => html`<button type="button" class="seg" data-testid=${`searches-show-${id}`} aria-pressed=${show === id ? "true" : "false"}
            onClick=${() => navigate(pageHref("searches", { show: id === "all" ? "" : id }), { replace: true })}>${label}</button>`,
        )}
      </div>
      <p class="searches-status" role="status" data-testid="searches-status">${status}</p>
      ${items === null
        ? html`<p class="muted" aria-busy="true">Loading saved searches…</p>`
        : shown.length === 0
          ? html`<p class="muted" data-testid="searches-empty">No saved searches${show === "all" ? "" : ` (${SHOW[show].toLowerCase()})`}.</p>`
          : html`<div class="results-wrap">
              <table class="results searches-table" data-testid="searches">
                <thead>
                  <tr><th scope="col">Name</th><th scope="col">Filters</th><th scope="col">Owner</th><th scope="col">Who sees it</th><th scope="col">Pinned</th><th scope="col">Changed</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
                </thead>
                <tbody>
                  ${shown.map((s) => html`<tr key=${s.id} data-testid="search-row" data-search-id=${s.id}>
                    <td><a href=${openHref(s.query)} data-testid="search-open">${s.name}</a></td>
                    <td class="search-query" data-testid="search-query">${describeQuery(s.query)}</td>
                    <td data-testid="search-owner">${s.mine ? "You" : s.owner_name}</td>
                    <td data-testid="search-visibility">${s.visibility === "role" ? `${ROLE_NAMES[s.role] || s.role}` : "Only the owner"}</td>
                    <td data-testid="search-pinned">${s.pinned ? "Yes" : "No"}</td>
                    <td class="c-time">${fmtTime(s.updated_at)}</td>
                    <td class="search-actions">
                      ${s.mine && confirming !== s.id && html`
                        <button type="button" class="btn btn-small" data-testid="search-edit" disabled=${busy === s.id}
                          aria-label=${`Edit ${s.name}`} onClick=${() => { setFormError(""); setEditing(s); }}>Edit</button>
                        <button type="button" class="btn btn-small" data-testid="search-pin" disabled=${busy === s.id}
                          aria-label=${`${s.pinned ? "Unpin" : "Pin"} ${s.name}`} onClick=${() => change(s, { ...fieldsOf(s), pinned: !s.pinned })}>
                          ${s.pinned ? "Unpin" : "Pin"}
                        </button>
                        <button type="button" class="btn btn-small" data-testid="search-delete" disabled=${busy === s.id}
                          aria-label=${`Delete ${s.name}`} onClick=${() => setConfirming(s.id)}>Delete</button>`}
                      ${s.mine && confirming === s.id && html`
                        <span class="search-confirm" role="group" aria-label=${`Delete ${s.name}?`}>
                          Delete?
                          <button type="button" class="btn btn-small btn-danger" data-testid="search-delete-confirm" disabled=${busy === s.id}
                            onClick=${() => remove(s)}>Delete</button>
                          <button type="button" class="btn btn-small" data-testid="search-delete-cancel"
                            onClick=${() => { setConfirming(null); requestAnimationFrame(() => rowButton(s.id, "search-delete")); }}>Keep</button>
                        </span>`}
                    </td>
                  </tr>`)}
                </tbody>
              </table>
            </div>`}
      ${editing && html`<${Dialog} title=${`Edit “${editing.name}”`} testid="search-edit-dialog" onClose=${() => setEditing(null)}>
        <p class="search-query muted">${describeQuery(editing.query)}</p>
        <${SearchForm} initial=${editing} submitLabel="Save" busy=${busy === editing.id} error=${formError}
          onSubmit=${(fields) => change(editing, { ...fields, query: editing.query }, () => setEditing(null))}
          onCancel=${() => setEditing(null)} />
      <//>`}
    </main>
  `;
}
