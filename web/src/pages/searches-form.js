// Saved searches: the form that names, shares and pins one, and the calls behind it. The explorer's
// "Save search" dialog (searches-save.js) and the Saved searches page (searches.js) share them.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ROLE, user } from "../auth.js";
import { api } from "../api.js";
import { requestId } from "../util.js";

export const ROLE_NAMES = { [ROLE.reader]: "Readers", [ROLE.analyst]: "Analysts", [ROLE.admin]: "Admins" };

/** The explorer's address for a saved search's query string. */
export const openHref = (query) => (query ? `/?${query}` : "/");

/** A saved search's filters as one line of text ("service: Exchange · start: 7d"). */
export function describeQuery(query) {
  const parts = [...new URLSearchParams(query)].map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`);
  return parts.length ? parts.join(" · ") : "All events, last 30 days";
}

/** Create a search (no `search`) or change one under its ETag; resolves with it as stored. */
export function saveSearch(fields, search) {
  if (!search) return api("/searches", { method: "POST", body: fields, headers: { "Idempotency-Key": requestId() } });
  return api(`/searches/${search.id}`, { method: "PUT", body: fields, headers: { "If-Match": search.etag } });
}

export const fieldsOf = (s) => ({ name: s.name, query: s.query, visibility: s.visibility, role: s.role, pinned: s.pinned });

/**
 * Name, who sees it (the owner only, or everyone holding a role the user holds) and "pin to home".
 * `onSubmit({name, visibility, role, pinned})`; `error` is shown under the fields (role=alert).
 */
export function SearchForm({ initial = {}, submitLabel, busy, error, onSubmit, onCancel }) {
  const u = user.value;
  const roles = [ROLE.reader, ROLE.analyst, ROLE.admin].filter((r) => u && u.roles.has(r));
  const [name, setName] = useState(initial.name || "");
  const [shared, setShared] = useState(initial.visibility === "role");
  const [role, setRole] = useState(initial.role || roles[roles.length - 1] || ROLE.reader);
  const [pinned, setPinned] = useState(Boolean(initial.pinned));
  const submit = (e) => {
    e.preventDefault();
    onSubmit({ name: name.trim(), visibility: shared ? "role" : "private", role: shared ? role : null, pinned });
  };
  return html`
    <form class="search-form" onSubmit=${submit}>
      <div class="field">
        <label for="search-form-name">Name</label>
        <input id="search-form-name" data-testid="search-form-name" required maxlength="100" autocomplete="off"
          value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      </div>
      <fieldset class="search-share">
        <legend>Who sees it</legend>
        <label><input type="radio" name="search-visibility" data-testid="search-form-private" checked=${!shared}
          onChange=${() => setShared(false)} /> Only me</label>
        <label><input type="radio" name="search-visibility" data-testid="search-form-shared" checked=${shared}
          disabled=${!roles.length} onChange=${() => setShared(true)} /> Everyone with the role</label>
        <label class="visually-hidden" for="search-form-role">Role</label>
        <select id="search-form-role" data-testid="search-form-role" value=${role} disabled=${!shared}
          onChange=${(e) => setRole(e.currentTarget.value)}>
          ${roles.map((r) => html`<option value=${r}>${ROLE_NAMES[r]} (${r})</option>`)}
        </select>
      </fieldset>
      <label class="search-pin"><input type="checkbox" data-testid="search-form-pinned" checked=${pinned}
        onChange=${(e) => setPinned(e.currentTarget.checked)} /> Pin to the home page</label>
      ${error && html`<p class="field-error" role="alert" data-testid="search-form-error">${error}</p>`}
      <div class="search-form-actions">
        <button type="submit" class="btn btn-primary" data-testid="search-form-submit" disabled=${busy}>
          ${busy ? "Saving…" : submitLabel}
        </button>
        <button type="button" class="btn" data-testid="search-form-cancel" onClick=${onCancel}>Cancel</button>
      </div>
    </form>
  `;
}

/**
 * A modal <dialog> titled `title`, open while mounted (focus moves into it and returns when it closes).
 * Escape closes it and belongs to it alone: the explorer's own Escape (close the detail) does not see it.
 */
export function Dialog({ title, testid, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog && dialog.open && dialog.close();
  }, []);
  return html`
    <dialog ref=${ref} class="search-dialog" data-testid=${testid} aria-labelledby=${`${testid}-title`} onClose=${onClose}
      onKeyDown=${(e) => e.key === "Escape" && e.stopPropagation()}>
      <h2 id=${`${testid}-title`}>${title}</h2>
      ${children}
    </dialog>
  `;
}
