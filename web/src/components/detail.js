// The event detail panel: summary, actor, targets, result, modified properties as old -> new diffs,
// the raw record (lazily, with a copy button), the correlation id, and tags and comments (Analyst).
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { ROLE, hasRole } from "../auth.js";
import { detail, updateEvent } from "../data.js";
import { showError } from "../errors.js";
import { selectedId, selectEvent, setFilters, stateHref } from "../state.js";
import { changedNames, changedPaths, fmtTime, inChanged, isoSeconds, jsonLines, parseMaybeJson, requestId } from "../util.js";
import { focusRow, actorText } from "./results.js";
import { pageHref } from "../pages.js";

const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$/;
const DAY = 86400000;

const isObject = (v) => v !== null && typeof v === "object";
const plain = (v) => (v === null || v === undefined || v === "" ? "(none)" : typeof v === "string" ? v : JSON.stringify(v));

/** Whether GET /api/objects/{id}/history takes `id` (shared/platform/ids.py is_object_id; the server decides). */
export const isObjectId = (id) =>
  typeof id === "string" && id.length <= 200 && /^[\p{L}\p{N}]/u.test(id) && !id.endsWith(" ") &&
  !/[\p{C}\p{Z}/\\?%\uFFFD]/u.test(id.replaceAll(" ", ""));

/** The object history page of `id`, its range reaching back to `timestamp` (the event that links to it). */
export function historyHref(id, timestamp) {
  const t = Date.parse(timestamp);
  const back = Date.now() - 30 * DAY;
  const start = t < back ? isoSeconds(Math.max(t - DAY, Date.now() - 365 * DAY)) : "";
  return pageHref("history", { id, start });
}

function HistoryLink({ id, timestamp, testid, name }) {
  if (!isObjectId(id)) return null;
  return html` <a class="history-link small" href=${historyHref(id, timestamp)} data-testid=${testid} data-object-id=${id}
    >history<span class="visually-hidden"> of ${name || id}</span></a
  >`;
}

function JsonBlock({ value, changed, side, label }) {
  const lines = jsonLines(value);
  return html`<pre class=${`json json-${side}`} tabindex="0" aria-label=${label}>${lines.map((line) =>
    !line.container && inChanged(line.path, changed)
      ? [html`<mark class=${`chg chg-${side}`} data-changed="true" data-path=${line.path}>${line.text}</mark>`, "\n"]
      : `${line.text}\n`,
  )}</pre>`;
}

export function PropertyDiff({ prop }) {
  const oldValue = parseMaybeJson(prop.old);
  const newValue = parseMaybeJson(prop.new);
  if (!isObject(oldValue) && !isObject(newValue)) {
    const same = plain(oldValue) === plain(newValue);
    return html`
      <div class="diff-prop" data-testid="diff-prop" data-prop=${prop.name}>
        <div class="diff-name">${prop.name}</div>
        <div class="diff-simple">
          <span class="visually-hidden">Old value: </span>
          <del class=${`diff-old${same ? " same" : ""}`} data-testid="diff-old">${plain(oldValue)}</del>
          <span class="arrow" aria-hidden="true">→</span>
          <span class="visually-hidden">New value: </span>
          <ins class=${`diff-new${same ? " same" : ""}`} data-testid="diff-new">${plain(newValue)}</ins>
        </div>
      </div>
    `;
  }
  const { oldSet, newSet } = changedPaths(oldValue, newValue);
  const names = changedNames(oldSet, newSet);
  return html`
    <div class="diff-prop" data-testid="diff-prop" data-prop=${prop.name}>
      <div class="diff-name">${prop.name}</div>
      <p class="diff-keys" data-testid="diff-keys">
        ${names.length ? html`Changed: ${names.map((n, i) => html`${i ? ", " : ""}<code>${n}</code>`)}` : "No change in value."}
      </p>
      <div class="diff-cols">
        <div class="diff-col">
          <div class="diff-col-title">Old</div>
          ${oldValue === null || oldValue === undefined || oldValue === ""
            ? html`<p class="muted">(none)</p>`
            : html`<${JsonBlock} value=${oldValue} changed=${oldSet} side="old" label=${`${prop.name}, old value`} />`}
        </div>
        <div class="diff-col">
          <div class="diff-col-title">New</div>
          ${newValue === null || newValue === undefined || newValue === ""
            ? html`<p class="muted">(none)</p>`
            : html`<${JsonBlock} value=${newValue} changed=${newSet} side="new" label=${`${prop.name}, new value`} />`}
        </div>
      </div>
    </div>
  `;
}

function Targets({ targets, timestamp }) {
  if (!targets || !targets.length) return null;
  const withChanges = targets.some((t) => (t.modified_properties || []).length);
  return html`
    <section class="detail-section" aria-labelledby="d-targets">
      <h3 id="d-targets">Targets</h3>
      <ul class="targets">
        ${targets.map(
          (t, i) => html`<li key=${i}>
            <span class="target-name">${t.display || t.id || "(unnamed)"}</span>
            ${t.type ? html` <span class="muted">(${t.type})</span>` : ""}
            <${HistoryLink} id=${t.id} timestamp=${timestamp} testid="target-history" name=${t.display} />
            ${t.id && t.display && t.id !== t.display ? html`<div class="muted mono small">${t.id}</div>` : ""}
          </li>`,
        )}
      </ul>
      ${withChanges &&
      html`<div class="diff" data-testid="diff">
        <h3 id="d-changes">Modified properties</h3>
        ${targets.map((t, i) =>
          (t.modified_properties || []).length
            ? html`<div class="diff-target" key=${i}>
                ${targets.length > 1 ? html`<h4>${t.display || t.id}</h4>` : ""}
                ${t.modified_properties.map((p, j) => html`<${PropertyDiff} key=${`${i}-${j}`} prop=${p} />`)}
              </div>`
            : null,
        )}
      </div>`}
    </section>
  `;
}

function Raw({ id }) {
  const [state, setState] = useState({ status: "idle", text: "" });
  const [copied, setCopied] = useState("");
  const preRef = useRef(null);
  const load = async () => {
    if (state.status === "ready") {
      setState({ ...state, status: "hidden" });
      return;
    }
    if (state.status === "hidden") {
      setState({ ...state, status: "ready" });
      return;
    }
    setState({ status: "loading", text: "" });
    try {
      const text = await api(`/events/${encodeURIComponent(id)}/raw`, { as: "text" });
      let pretty = text;
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* shown as sent */
      }
      setState({ status: "ready", text: pretty });
    } catch (error) {
      setState({ status: "error", text: "" });
      showError(error, "The raw record could not be loaded");
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(state.text);
      setCopied("Copied to the clipboard.");
    } catch {
      const range = document.createRange();
      range.selectNodeContents(preRef.current);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      setCopied("Selected: press Ctrl+C to copy.");
    }
  };
  const shown = state.status === "ready";
  return html`
    <section class="detail-section" aria-labelledby="d-raw">
      <h3 id="d-raw">Raw record</h3>
      <div class="inline">
        <button type="button" class="btn btn-small" data-testid="raw-toggle" aria-expanded=${shown ? "true" : "false"} aria-controls="raw-pre" onClick=${load}>
          ${state.status === "loading" ? "Loading…" : shown ? "Hide raw record" : "Show raw record"}
        </button>
        ${shown && html`<button type="button" class="btn btn-small" data-testid="copy-raw" onClick=${copy}>Copy</button>`}
        <span class="muted" role="status" data-testid="copy-status">${copied}</span>
      </div>
      ${shown && html`<pre id="raw-pre" class="json raw" data-testid="raw" ref=${preRef} tabindex="0" aria-label="Raw record">${state.text}</pre>`}
    </section>
  `;
}

function Tags({ event }) {
  const analyst = hasRole(ROLE.analyst);
  const [value, setValue] = useState("");
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);
  const tags = event.tags || [];
  const change = async (body) => {
    setBusy(true);
    try {
      const updated = await api(`/events/${encodeURIComponent(event.id)}/tags`, {
        method: "PATCH",
        body,
        headers: { "Idempotency-Key": requestId() },
      });
      updateEvent(updated);
      return true;
    } catch (error) {
      showError(error, "The tags could not be changed");
      return false;
    } finally {
      setBusy(false);
    }
  };
  const add = async (e) => {
    e.preventDefault();
    const tag = value.trim();
    if (!tag) return;
    if (tag.length > 64 || !TAG_PATTERN.test(tag)) {
      setProblem("A tag starts with a letter or digit, then letters, digits, spaces or _ . : / -; at most 64.");
      return;
    }
    setProblem("");
    if (tags.includes(tag)) {
      setValue("");
      return;
    }
    if (await change({ add: [tag] })) setValue("");
  };
  return html`
    <section class="detail-section" aria-labelledby="d-tags" data-testid="tags">
      <h3 id="d-tags">Tags</h3>
      ${tags.length
        ? html`<ul class="tag-list">
            ${tags.map(
              (t) => html`<li class="tag" key=${t} data-testid=${`tag-${t}`}>
                <span>${t}</span>
                ${analyst &&
                html`<button type="button" class="chip-x" data-testid=${`tag-remove-${t}`} aria-label=${`Remove tag ${t}`} disabled=${busy} onClick=${() => change({ remove: [t] })}>
                  ×
                </button>`}
              </li>`,
            )}
          </ul>`
        : html`<p class="muted">No tags.</p>`}
      ${analyst &&
      html`<form class="inline" onSubmit=${add} data-testid="tag-form">
        <label for="tag-input" class="visually-hidden">New tag</label>
        <input
          id="tag-input"
          type="text"
          data-testid="tag-input"
          placeholder="Add a tag"
          maxlength="64"
          value=${value}
          aria-invalid=${problem ? "true" : "false"}
          aria-describedby=${problem ? "tag-problem" : undefined}
          onInput=${(e) => setValue(e.currentTarget.value)}
        />
        <button type="submit" class="btn btn-small" data-testid="tag-add" disabled=${busy}>Add tag</button>
      </form>`}
      ${problem && html`<p id="tag-problem" class="field-error">${problem}</p>`}
    </section>
  `;
}

function Comments({ event }) {
  const analyst = hasRole(ROLE.analyst);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const key = useRef(requestId()); // one key per draft: a retried click adds the comment once
  const comments = event.comments || [];
  const submit = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    try {
      const comment = await api(`/events/${encodeURIComponent(event.id)}/comments`, {
        method: "POST",
        body: { text },
        headers: { "Idempotency-Key": key.current },
      });
      const current = detail.peek().event || event;
      const list = (current.comments || []).filter((c) => c.id !== comment.id);
      updateEvent({ ...current, comments: [...list, comment] });
      setText("");
      key.current = requestId();
    } catch (error) {
      showError(error, "The comment could not be added");
    } finally {
      setBusy(false);
    }
  };
  if (!analyst && !comments.length) return null;
  return html`
    <section class="detail-section" aria-labelledby="d-comments" data-testid="comments">
      <h3 id="d-comments">Comments</h3>
      ${comments.length
        ? html`<ol class="comments">
            ${comments.map(
              (c) => html`<li key=${c.id} data-testid="comment">
                <div class="muted small"><strong>${c.author}</strong> · <time datetime=${c.at}>${fmtTime(c.at)}</time> UTC</div>
                <p class="comment-text">${c.text}</p>
              </li>`,
            )}
          </ol>`
        : html`<p class="muted">No comments.</p>`}
      ${analyst &&
      html`<form class="comment-form" onSubmit=${submit}>
        <label for="comment-input">Add a comment</label>
        <textarea
          id="comment-input"
          data-testid="comment-input"
          rows="3"
          maxlength="4000"
          value=${text}
          onInput=${(e) => setText(e.currentTarget.value)}
        ></textarea>
        <button type="submit" class="btn btn-small" data-testid="comment-add" disabled=${busy || !text.trim()}>Add comment</button>
      </form>`}
    </section>
  `;
}

function Fact({ label, children, testid }) {
  return html`<div class="fact" data-testid=${testid}><dt>${label}</dt><dd>${children}</dd></div>`;
}

function correlationFilters(event) {
  const t = Date.parse(event.timestamp);
  const base = { correlation_id: event.correlation_id };
  if (Number.isNaN(t)) return base;
  return { ...base, start: isoSeconds(t - DAY), end: isoSeconds(Math.min(Date.now(), t + DAY) + 1000) };
}

function Extras({ event }) {
  const extras = {};
  for (const key of ["signin", "dlp", "alert", "details"]) if (event[key]) extras[key] = event[key];
  if (!Object.keys(extras).length) return null;
  return html`
    <section class="detail-section" aria-labelledby="d-more">
      <h3 id="d-more">More details</h3>
      <pre class="json" tabindex="0" aria-labelledby="d-more">${JSON.stringify(extras, null, 2)}</pre>
    </section>
  `;
}

export function Detail() {
  const id = selectedId.value;
  const d = detail.value;
  const headingRef = useRef(null);
  useEffect(() => {
    if (id && headingRef.current) headingRef.current.focus();
  }, [id]);
  if (!id) return null;
  const event = d.id === id ? d.event : null;
  const close = () => {
    selectEvent(null);
    requestAnimationFrame(() => focusRow(id));
  };
  const actor = event && event.actor ? event.actor : null;
  const related = event && event.correlation_id ? correlationFilters(event) : null;
  return html`
    <aside class="detail" data-testid="detail" aria-labelledby="detail-title" aria-busy=${d.loading ? "true" : "false"}>
      <div class="detail-head">
        <h2 id="detail-title" tabindex="-1" ref=${headingRef}>${event ? event.operation : "Event"}</h2>
        <button type="button" class="btn btn-quiet" data-testid="detail-close" aria-label="Close the detail (Escape)" onClick=${close}>
          Close
        </button>
      </div>
      ${!event && d.loading && html`<p class="muted">Loading the event…</p>`}
      ${!event && d.error && html`<p class="field-error" data-testid="detail-error">${d.error.title}: ${d.error.detail}</p>`}
      ${event &&
      html`<div class="detail-body" key=${event.id}>
        <p class="detail-summary" data-testid="detail-summary">${event.summary}</p>
        <dl class="facts">
          <${Fact} label="Time (UTC)">${fmtTime(event.timestamp)}<//>
          <${Fact} label="Service">${event.service}${event.category ? ` · ${event.category}` : ""}<//>
          <${Fact} label="Result" testid="detail-result">
            <span class=${`result result-${event.result || "unknown"}`}>${event.result}</span>
            ${event.result_reason ? ` · ${event.result_reason}` : ""}${event.result_code ? ` (${event.result_code})` : ""}
          <//>
          ${actor &&
          html`<${Fact} label="Actor" testid="detail-actor">
            ${actorText(actor)}${actor.upn && actor.upn !== actorText(actor) ? html` <span class="muted">${actor.upn}</span>` : ""}
            ${actor.type ? html` <span class="muted">(${actor.type})</span>` : ""}
            <${HistoryLink} id=${actor.id || actor.upn} timestamp=${event.timestamp} testid="actor-history" name=${actorText(actor)} />
            ${actor.ip ? html`<div class="muted small">IP ${actor.ip}</div>` : ""}
            ${actor.client_app && (actor.client_app.name || actor.client_app.id)
              ? html`<div class="muted small">via ${actor.client_app.name || actor.client_app.id}</div>`
              : ""}
          <//>`}
          ${event.operation_type && html`<${Fact} label="Operation type">${event.operation_type}<//>`}
          ${event.source && html`<${Fact} label="Source">${event.source}<//>`}
          ${related &&
          html`<${Fact} label="Correlation id">
            <a
              href=${stateHref(related, null)}
              data-testid="correlation-link"
              class="mono"
              onClick=${(e) => {
                if (e.ctrlKey || e.metaKey || e.shiftKey) return;
                e.preventDefault();
                setFilters(related);
              }}
              >${event.correlation_id}</a
            >
            <span class="muted small"> (find related events)</span>
          <//>`}
          <${Fact} label="Event id"><span class="mono small">${event.id}</span><//>
        </dl>
        <${Targets} targets=${event.targets} timestamp=${event.timestamp} />
        <${Tags} event=${event} />
        <${Comments} event=${event} />
        <${Extras} event=${event} />
        <${Raw} key=${event.id} id=${event.id} />
      </div>`}
    </aside>
  `;
}
