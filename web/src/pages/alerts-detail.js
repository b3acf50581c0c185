// One alert (/alerts?id=…): what fired and when, the matched events (each opens in the event explorer),
// deliveries per channel, history and comments; triage for an Analyst, "Suppress similar" for an Admin.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, isAbort } from "../api.js";
import { ROLE, hasRole } from "../auth.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { fmtNumber, fmtTime, requestId } from "../util.js";

export const STATUSES = ["open", "acknowledged", "resolved", "closed"];
export const CLASSES = {
  true_positive: "True positive",
  benign_positive: "Benign positive",
  false_positive: "False positive",
  undetermined: "Undetermined",
};
/** What a status change is called, by the status it leads to. */
export const VERBS = { acknowledged: "Acknowledge", resolved: "Resolve", closed: "Close", open: "Reopen" };
/** shared/alerts/model.py ALLOWED_TRANSITIONS. */
const NEXT = {
  open: ["acknowledged", "resolved", "closed"],
  acknowledged: ["resolved", "closed", "open"],
  resolved: ["closed", "open"],
  closed: ["open"],
};
const DAY = 86400000;

export const Sev = ({ s }) => html`<span class=${`sev sev-${s}`}>${s}</span>`;

/** A table's head: a column per name, then `children` (more header cells). */
export const Cols = ({ names, children }) =>
  html`<thead><tr>${children}${names.map((n) => html`<th scope="col">${n}</th>`)}</tr></thead>`;

/** A rule's id, linking to the Rules page's view of that rule. */
export const RuleLink = ({ id }) =>
  html`<a class="mono" href=${pageHref("rules", { rule: id })} data-testid="alert-rule" title="Open the rule">${id}</a>`;

/** The values an alert's rule groups by ("alice@contoso.com"). */
export const groupLabel = (g) => Object.values(g || {}).join(", ");

/** An ISO time floored to the second, plus `plus` seconds (the explorer's end is exclusive). */
function second(iso, plus = 0) {
  return new Date(Math.floor(Date.parse(iso) / 1000) * 1000 + plus * 1000).toISOString().replace(".000Z", "Z");
}

/** The event explorer showing one event: its second, with its detail open. */
const eventHref = (ref) => pageHref("events", { start: second(ref.timestamp), end: second(ref.timestamp, 1), event: ref.id });

/** MITRE ATT&CK's page of a technique (T1098.003 -> techniques/T1098/003/). */
const mitreHref = (t) => `https://attack.mitre.org/techniques/${t.replace(".", "/")}/`;

function historyText(h) {
  if (h.action === "created") return "opened the alert";
  if (h.action === "status") return `${h.from_status} → ${h.to_status}`;
  if (h.action === "classification") return `classified: ${CLASSES[h.classification] || h.classification}`;
  return "commented";
}

export function AlertDetail({ id, back }) {
  const [a, setA] = useState(null);
  const [tick, setTick] = useState(0);
  const h1 = useRef(null);
  useEffect(() => {
    const ctl = new AbortController();
    api(`/alerts/${encodeURIComponent(id)}`, { signal: ctl.signal }).then(setA, (e) => {
      if (isAbort(e)) return;
      setA(false);
      showError(e, "The alert could not be loaded");
    });
    return () => ctl.abort();
  }, [id, tick]);
  useEffect(() => {
    if (a && h1.current && tick === 0) h1.current.focus();
  }, [Boolean(a)]);
  const backLink = html`<p><a href=${back} data-testid="alert-back">← All alerts</a></p>`;
  if (a === null) return html`${backLink}<h1>Alert</h1><p class="muted loading" aria-busy="true">Loading…</p>`;
  if (a === false) return html`${backLink}<h1>Alert not found</h1>`;
  const events = [...(a.events || [])].sort((x, y) => (x.timestamp < y.timestamp ? -1 : 1));
  const s = a.suppression;
  const facts = [
    ["Severity", html`<${Sev} s=${a.severity} />`],
    ["Status", a.status, "alert-status"],
    ["Classification", CLASSES[a.classification] || "not classified", "alert-classification"],
    ["Rule", html`<${RuleLink} id=${a.rule_id} />`],
    ["MITRE ATT&CK", (a.mitre || []).map((t, i) => html`${i ? ", " : ""}<a href=${mitreHref(t)} target="_blank" rel="noopener noreferrer">${t}</a>`), "alert-mitre"],
    ["Occurrences", fmtNumber(a.occurrences || 0), "alert-occurrences"],
    ["First seen", `${fmtTime(a.first_seen)} UTC`],
    ["Last seen", `${fmtTime(a.last_seen)} UTC`],
    ["Grouped by", Object.entries(a.group || {}).map(([k, v]) => html`<div>${v} <span class="muted small">(${k})</span></div>`)],
    ["Status changed", a.status_changed_by && `${fmtTime(a.status_changed_at)} UTC by ${a.status_changed_by}`],
  ];
  const section = (id, title, testid, body) =>
    html`<section class="detail-section" aria-labelledby=${id} data-testid=${testid}><h2 id=${id}>${title}</h2>${body}</section>`;
  return html`
    ${backLink}
    <h1 tabindex="-1" ref=${h1} data-testid="alert-title">${a.title}</h1>
    ${s &&
    html`<p class="note" data-testid="alert-suppression">
      Similar alerts are suppressed until ${fmtTime(s.expires_at)} UTC (${s.created_by}: ${s.reason}); ${fmtNumber(s.matches || 0)} matches since.
    </p>`}
    <p data-testid="alert-description">${a.description}</p>
    <dl class="facts al-facts" data-testid="alert-facts">
      ${facts.map(([k, v, t]) => (v && v.length !== 0 ? html`<div class="fact"><dt>${k}</dt><dd data-testid=${t}>${v}</dd></div>` : null))}
    </dl>
    ${hasRole(ROLE.analyst) && html`<${Triage} a=${a} onChange=${(x) => setA({ suppression: s, ...x })} />`}
    ${hasRole(ROLE.admin) && html`<${Suppress} a=${a} onDone=${() => setTick((n) => n + 1)} />`}
    ${section("al-ev", "Matched events", "alert-events", html`
      <p class="muted small">
        ${events.length < a.occurrences ? `The first ${events.length} of ${a.occurrences} are kept on the alert. ` : ""}
        Each opens in the event explorer.
      </p>
      <ul class="al-events">
        ${events.map(
          (r) => html`<li key=${r.id}>
            <a href=${eventHref(r)} data-testid="alert-event" data-event-id=${r.id}>${fmtTime(r.timestamp)}</a>
            <span class="muted small mono"> ${r.id}</span>
          </li>`,
        )}
      </ul>`)}
    ${section("al-del", "Notifications", "alert-deliveries", Object.keys(a.deliveries || {}).length
      ? html`<table class="results">
          <${Cols} names=${["Channel", "Round", "Status", "Attempts", "Receiver's answer", "Updated (UTC)"]} />
          <tbody>
            ${Object.values(a.deliveries).map(
              (d) => html`<tr key=${d.channel} data-testid="delivery" data-channel=${d.channel} data-status=${d.status}>
                <td>${d.channel}</td><td>${d.round}</td><td>${d.status}</td><td>${d.attempts}</td>
                <td>${d.reason || d.http_status}</td><td>${fmtTime(d.updated_at)}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : html`<p class="muted">No channel takes this alert.</p>`)}
    ${section("al-com", "Comments", "alert-comments", (a.comments || []).length
      ? html`<ul class="comments">
          ${a.comments.map(
            (c) => html`<li key=${c.id} data-testid="alert-comment">
              <span class="muted small">${fmtTime(c.at)} · ${c.by}</span>
              <p class="comment-text">${c.text}</p>
            </li>`,
          )}
        </ul>`
      : html`<p class="muted">No comments.</p>`)}
    ${section("al-his", "History", "alert-history", html`<ol class="al-history">
      ${(a.history || []).map(
        (h, i) => html`<li key=${i} data-testid="history-entry" data-action=${h.action}>
          <span class="muted small">${fmtTime(h.at)}</span> <strong>${h.by}</strong> ${historyText(h)}
        </li>`,
      )}
    </ol>`)}
  `;
}

function Triage({ a, onChange }) {
  const [cls, setCls] = useState(a.classification || "");
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState("");
  const send = async (body, done) => {
    setBusy(true);
    try {
      const updated = await api(`/alerts/${encodeURIComponent(a.id)}`, {
        method: "PATCH",
        body,
        headers: { "Idempotency-Key": requestId() },
      });
      onChange(updated);
      setSaid(done);
      return true;
    } catch (e) {
      showError(e, "The alert could not be changed");
      return false;
    } finally {
      setBusy(false);
    }
  };
  const addComment = async (e) => {
    e.preventDefault();
    const text = comment.trim();
    if (text && (await send({ comment: text }, "Comment added."))) setComment("");
  };
  return html`
    <section class="detail-section al-triage" aria-labelledby="al-tri" data-testid="alert-actions">
      <h2 id="al-tri">Triage</h2>
      <div class="inline" role="group" aria-label="Status">
        ${(NEXT[a.status] || []).map(
          (to) => html`<button type="button" class="btn" data-testid=${`action-${to}`} disabled=${busy}
            onClick=${() => send({ status: to }, `Status: ${to}.`)}>${VERBS[to]}</button>`,
        )}
      </div>
      <form class="inline" onSubmit=${(e) => {
        e.preventDefault();
        if (cls) send({ classification: cls }, `Classified: ${CLASSES[cls]}.`);
      }}>
        <label for="al-cls">Classification</label>
        <select id="al-cls" data-testid="classify-select" value=${cls} onChange=${(e) => setCls(e.currentTarget.value)}>
          <option value="">Choose…</option>
          ${Object.entries(CLASSES).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select>
        <button type="submit" class="btn" data-testid="classify-apply" disabled=${busy || !cls || cls === a.classification}>Classify</button>
      </form>
      <form class="comment-form" onSubmit=${addComment}>
        <label for="al-comment">Comment</label>
        <textarea id="al-comment" rows="3" maxlength="4000" data-testid="alert-comment-input" value=${comment}
          onInput=${(e) => setComment(e.currentTarget.value)}></textarea>
        <button type="submit" class="btn" data-testid="alert-comment-add" disabled=${busy || !comment.trim()}>Add comment</button>
      </form>
      <p role="status" class="muted small" data-testid="triage-status">${said}</p>
    </section>
  `;
}

function Suppress({ a, onDone }) {
  const [reason, setReason] = useState("");
  const [expiry, setExpiry] = useState("7");
  const [date, setDate] = useState("");
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState("");
  const today = new Date().toISOString().slice(0, 10);
  const last = new Date(Date.now() + 89 * DAY).toISOString().slice(0, 10); // the API takes up to 90 days
  const submit = async (e) => {
    e.preventDefault();
    const expires_at =
      expiry === "date"
        ? `${date}T23:59:59Z`
        : new Date(Date.now() + Number(expiry) * DAY).toISOString().replace(/\.\d+Z$/, "Z");
    setBusy(true);
    try {
      const s = await api(`/alerts/${encodeURIComponent(a.id)}/suppress`, {
        method: "POST",
        body: { reason: reason.trim(), expires_at },
        headers: { "Idempotency-Key": requestId() },
      });
      setSaid(`Suppressed until ${fmtTime(s.expires_at)} UTC.`);
      setReason("");
      onDone();
    } catch (error) {
      showError(error, "The suppression could not be created");
    } finally {
      setBusy(false);
    }
  };
  return html`
    <section class="detail-section" aria-labelledby="al-sup">
      <h2 id="al-sup">Suppress similar</h2>
      <p class="muted small">
        Matches of this rule for ${groupLabel(a.group) || "this group"} will be counted but open no alert.${" "}
        <a href=${pageHref("alerts", { view: "suppressions" })}>All suppressions</a>
      </p>
      <form class="al-suppress" data-testid="suppress-form" onSubmit=${submit}>
        <div class="field">
          <label for="al-reason">Reason</label>
          <input id="al-reason" data-testid="suppress-reason" required maxlength="500" value=${reason}
            onInput=${(e) => setReason(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="al-exp">For</label>
          <select id="al-exp" data-testid="suppress-expiry" value=${expiry} onChange=${(e) => setExpiry(e.currentTarget.value)}>
            <option value="1">1 day</option>
            <option value="7">7 days</option>
            <option value="30">30 days</option>
            <option value="date">Until a date…</option>
          </select>
        </div>
        ${expiry === "date" &&
        html`<div class="field">
          <label for="al-exp-date">Until the end of (UTC)</label>
          <input id="al-exp-date" type="date" data-testid="suppress-date" required min=${today} max=${last} value=${date}
            onInput=${(e) => setDate(e.currentTarget.value)} />
        </div>`}
        <button type="submit" class="btn" data-testid="suppress-submit" disabled=${busy || !reason.trim() || (expiry === "date" && !date)}>
          Suppress similar
        </button>
      </form>
      <p role="status" class="muted small" data-testid="suppress-status">${said}</p>
    </section>
  `;
}
