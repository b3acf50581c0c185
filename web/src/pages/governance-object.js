// One service principal on the Governance page (/governance?id=<object id>): its facts, every finding with
// its evidence, the accepted risks (an Admin accepts one per validator with a reason and an expiry date, and
// revokes it), the last-known-good notes and owners, the notes remediation (the exact PATCH, recorded in
// ReportOnly mode or sent in Update mode) and its history. GET /api/governance/objects/{id}.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, isAbort } from "../api.js";
import { ROLE, hasRole } from "../auth.js";
import { showError } from "../errors.js";
import { fmtTime } from "../util.js";

const DAY = 86400000;
const MAX_REASON = 1000;
const MAX_DAYS = 364; // the end of that day is within the API's 365 days

/** A service principal's object id (the API checks it against the same grammar). */
export const isGuid = (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
export const Sev = ({ s }) => html`<span class=${`sev sev-${s}`}>${s}</span>`;
export const Cols = ({ names }) => html`<thead><tr>${names.map((n) => html`<th scope="col">${n}</th>`)}</tr></thead>`;

const day = (offset) => new Date(Date.now() + offset * DAY).toISOString().slice(0, 10);
const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));
const Section = ({ id, title, testid, children }) =>
  html`<section class="detail-section" aria-labelledby=${id} data-testid=${testid}><h2 id=${id}>${title}</h2>${children}</section>`;

/** What an audit entry about the object says, in a line. */
function historyText(h) {
  const a = h.after || {};
  if (h.action === "governance.evaluate") {
    const n = (a.findings || []).length;
    return `evaluated (${a.trigger || "manual"}): ${a.result}${n ? `, ${n} finding(s)` : ""}${(a.resolved || []).length ? `, ${a.resolved.length} resolved` : ""}`;
  }
  if (h.action === "governance.notes.report") return `would set the notes to "${a.notes}" (report only)`;
  if (h.action === "governance.notes.cannot-remediate") return `cannot remediate the notes: ${a.reason}`;
  if (h.action === "governance.notes.update") return `set the notes to "${(a.body && a.body.notes) || a.notes || ""}"`;
  if (h.action === "governance.exception.accept") return `accepted the risk of ${a.validator_id} until ${fmtTime(a.expires_at)} UTC: ${a.reason}`;
  if (h.action === "governance.exception.revoke") return `revoked the accepted risk of ${(h.before || {}).validator_id || ""}`;
  return h.action;
}

export function GovObject({ id, back }) {
  const [d, setD] = useState(null);
  const [tick, setTick] = useState(0);
  const [said, setSaid] = useState("");
  const h1 = useRef(null);
  const valid = isGuid(id);
  useEffect(() => {
    if (!valid) return undefined;
    const ctl = new AbortController();
    api(`/governance/objects/${encodeURIComponent(id.toLowerCase())}`, { signal: ctl.signal }).then(setD, (e) => {
      if (isAbort(e)) return;
      setD(false);
      if (e.status !== 404) showError(e, "The service principal could not be loaded");
    });
    return () => ctl.abort();
  }, [id, tick]);
  useEffect(() => {
    if (d && h1.current && tick === 0) h1.current.focus();
  }, [Boolean(d)]);
  const backLink = html`<p><a href=${back} data-testid="gv-back">← All findings</a></p>`;
  if (!valid || d === false) {
    return html`${backLink}<h1 data-testid="gv-object-missing">Service principal not found</h1>
      <p class="muted">${valid ? "Governance has not evaluated this object." : "An object id is a GUID."}</p>`;
  }
  if (d === null) return html`${backLink}<h1>Service principal</h1><p class="muted loading" aria-busy="true">Loading…</p>`;
  const o = d.object;
  const changed = (text) => {
    setSaid(text);
    setTick((n) => n + 1);
  };
  const facts = [
    ["Object id", html`<span class="mono">${o.object_id}</span>`],
    ["Application id", o.app_id && html`<span class="mono">${o.app_id}</span>`],
    ["Type", o.service_principal_type],
    ["Last result", o.last_result, "gv-object-result"],
    ["Last evaluated", `${fmtTime(o.last_evaluated_at)} UTC (${o.last_trigger})`],
    ["Findings", `${o.open_findings} open, ${o.accepted_findings} accepted`, "gv-object-counts"],
  ];
  return html`
    <div data-testid="gv-object" data-object-id=${o.object_id}>
      ${backLink}
      <h1 tabindex="-1" ref=${h1} data-testid="gv-object-name">${o.display_name}</h1>
      <dl class="facts al-facts" data-testid="gv-object-facts">
        ${facts.map(([k, v, t]) => (v ? html`<div class="fact"><dt>${k}</dt><dd data-testid=${t}>${v}</dd></div>` : null))}
      </dl>
      <p role="status" class="muted small" data-testid="gv-exception-status">${said}</p>
      <${Section} id="gv-f" title="Findings" testid="gv-object-findings">
        ${d.findings.length
          ? html`<ul class="gv-findings">${d.findings.map((f) => html`<${FindingItem} key=${f.id} f=${f} exceptions=${d.exceptions} onChange=${changed} />`)}</ul>`
          : html`<p class="muted">No findings: every validator passed.</p>`}
      <//>
      <${Section} id="gv-x" title="Accepted risks" testid="gv-exceptions">
        ${d.exceptions.length
          ? html`<ul class="gv-list">
              ${d.exceptions.map(
                (x) => html`<li key=${x.id} data-testid="gv-exception" data-exception-id=${x.id} data-validator=${x.validator_id} data-active=${String(Boolean(x.active))}>
                  <span class="mono">${x.validator_id}</span> ${x.active ? "until" : "expired"} ${fmtTime(x.expires_at)} UTC: ${x.reason}
                  <span class="muted small"> (${x.created_by}, ${fmtTime(x.created_at)})</span>
                  ${hasRole(ROLE.admin) && html` <${Revoke} x=${x} onChange=${changed} />`}
                </li>`,
              )}
            </ul>`
          : html`<p class="muted" data-testid="gv-no-exceptions">No risk accepted.</p>`}
      <//>
      <${Section} id="gv-lkg" title="Last known good" testid="gv-lkg">
        ${o.last_known_good ? html`<${Lkg} g=${o.last_known_good} />` : html`<p class="muted" data-testid="gv-no-lkg">Never seen passing.</p>`}
      <//>
      <${Section} id="gv-rem" title="Notes remediation" testid="gv-remediation">
        ${o.remediation ? html`<${Remediation} r=${o.remediation} />` : html`<p class="muted" data-testid="gv-no-remediation">Nothing planned: the notes pass.</p>`}
      <//>
      <${Section} id="gv-his" title="History" testid="gv-history">
        <ol class="al-history">
          ${(d.history || []).map(
            (h) => html`<li key=${h.id} data-testid="gv-history-entry" data-action=${h.action}>
              <span class="muted small">${fmtTime(h.at)}</span> <strong>${h.actor}</strong> ${historyText(h)}
            </li>`,
          )}
        </ol>
      <//>
    </div>
  `;
}

function FindingItem({ f, exceptions, onChange }) {
  const [open, setOpen] = useState(false);
  const x = exceptions.find((e) => e.id === f.exception_id) || exceptions.find((e) => e.validator_id === f.validator_id && e.active);
  return html`
    <li class="gv-finding" data-testid="gv-object-finding" data-finding-id=${f.id} data-validator=${f.validator_id} data-state=${f.state}>
      <div><${Sev} s=${f.severity} /> <strong>${f.validator_id}</strong> <span class="mono small">${f.subject}</span>${" · "}<span data-testid="gv-object-finding-state">${f.state}</span></div>
      <p>${f.message}</p>
      <dl class="facts gv-evidence" data-testid="gv-evidence">
        ${Object.entries(f.evidence || {}).map(([k, v]) => html`<div class="fact"><dt>${k}</dt><dd class="mono small">${show(v)}</dd></div>`)}
      </dl>
      <p class="muted small">First seen ${fmtTime(f.first_seen)}, last seen ${fmtTime(f.last_seen)}${f.resolved_at ? `, resolved ${fmtTime(f.resolved_at)}` : ""} (UTC)</p>
      ${f.state === "accepted" && x && html`<p class="note" data-testid="gv-accepted">Risk accepted until ${fmtTime(x.expires_at)} UTC by ${x.created_by}: ${x.reason}</p>`}
      ${hasRole(ROLE.admin) && f.state === "open" && !open &&
      html`<button type="button" class="btn btn-small" data-testid="gv-accept" onClick=${() => setOpen(true)}>
        Accept risk<span class="visually-hidden"> of ${f.validator_id}</span></button>`}
      ${open && html`<${AcceptForm} f=${f} onCancel=${() => setOpen(false)} onDone=${(text) => (setOpen(false), onChange(text))} />`}
    </li>
  `;
}

function AcceptForm({ f, onCancel, onDone }) {
  const [reason, setReason] = useState("");
  const [date, setDate] = useState(day(30));
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const first = useRef(null);
  const when = useRef(null);
  useEffect(() => first.current && first.current.focus(), []);
  const min = day(0);
  const max = day(MAX_DAYS);
  const check = () => {
    const found = {};
    const r = reason.trim();
    if (!r) found.reason = "Say why the risk is accepted.";
    else if (r.length > MAX_REASON) found.reason = `At most ${MAX_REASON} characters.`;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) found.expiry = "Choose the last day the exception holds.";
    else if (date < min || date > max) found.expiry = `Choose a day from ${min} to ${max}.`;
    return found;
  };
  const submit = async (e) => {
    e.preventDefault();
    const found = check();
    setErrors(found);
    // The first field with a problem takes the focus (its message is its description).
    if (found.reason || found.expiry) return (found.reason ? first : when).current.focus();
    setBusy(true);
    try {
      const x = await api("/governance/exceptions", {
        method: "POST",
        body: { object_id: f.object_id, validator_id: f.validator_id, reason: reason.trim(), expires_at: `${date}T23:59:59Z` },
      });
      onDone(`Risk of ${x.validator_id} accepted until ${fmtTime(x.expires_at)} UTC.`);
    } catch (error) {
      if (error.status === 400 || error.status === 422) setErrors({ server: error.message });
      else showError(error, "The exception could not be stored");
    } finally {
      setBusy(false);
    }
  };
  const ids = (name) => (errors[name] ? { "aria-invalid": "true", "aria-describedby": `gv-acc-${name}-${f.id}` } : {});
  const err = (name) => errors[name] && html`<span id=${`gv-acc-${name}-${f.id}`} class="field-error" data-testid=${`gv-accept-${name}-error`}>${errors[name]}</span>`;
  return html`
    <form class="al-suppress gv-accept" data-testid="gv-accept-form" aria-label=${`Accept the risk of ${f.validator_id}`} onSubmit=${submit} noValidate>
      <p class="muted small gv-wide">Covers every finding of ${f.validator_id} on this service principal until the end of the day chosen (UTC).</p>
      <div class="field">
        <label for=${`gv-reason-${f.id}`}>Reason</label>
        <textarea id=${`gv-reason-${f.id}`} ref=${first} rows="2" data-testid="gv-accept-reason" value=${reason} ...${ids("reason")}
          onInput=${(e) => setReason(e.currentTarget.value)}></textarea>
        ${err("reason")}
      </div>
      <div class="field">
        <label for=${`gv-exp-${f.id}`}>Until the end of (UTC)</label>
        <input id=${`gv-exp-${f.id}`} ref=${when} type="date" data-testid="gv-accept-expiry" min=${min} max=${max} value=${date} ...${ids("expiry")}
          onInput=${(e) => setDate(e.currentTarget.value)} />
        ${err("expiry")}
      </div>
      <button type="submit" class="btn btn-primary" data-testid="gv-accept-submit" disabled=${busy}>Accept risk</button>
      <button type="button" class="btn btn-quiet" data-testid="gv-accept-cancel" onClick=${onCancel}>Cancel</button>
      ${errors.server && html`<p role="alert" class="field-error gv-wide" data-testid="gv-accept-error">${errors.server}</p>`}
    </form>
  `;
}

function Revoke({ x, onChange }) {
  const [busy, setBusy] = useState(false);
  const revoke = async () => {
    setBusy(true);
    try {
      await api(`/governance/exceptions/${encodeURIComponent(x.id)}`, { method: "DELETE", headers: x.etag ? { "If-Match": x.etag } : {} });
      onChange(`Accepted risk of ${x.validator_id} revoked.`);
    } catch (error) {
      // 412: changed since it was read (another admin); 404: already gone. Either way, show it as it is now.
      if (error.status === 412 || error.status === 404) onChange(`The accepted risk of ${x.validator_id} changed meanwhile: shown as it is now.`);
      else showError(error, "The exception could not be revoked");
      setBusy(false);
    }
  };
  return html`<button type="button" class="btn btn-small" data-testid="gv-revoke" disabled=${busy} onClick=${revoke}
    aria-label=${`Revoke the accepted risk of ${x.validator_id}`}>Revoke</button>`;
}

const Owners = ({ list, label }) =>
  list && list.length
    ? html`<div class="fact"><dt>${label}</dt><dd><ul class="gv-list">
        ${list.map((w) => html`<li key=${w.id} data-testid="gv-lkg-owner">${w.upn || w.display_name || w.id} <span class="muted small">(${w.kind}, ${w.standing})</span></li>`)}
      </ul></dd></div>`
    : null;

function Lkg({ g }) {
  return html`<dl class="facts">
    <div class="fact"><dt>Seen passing</dt><dd>${fmtTime(g.at)} UTC</dd></div>
    <div class="fact"><dt>Notes</dt><dd class="mono" data-testid="gv-lkg-notes">${g.notes || "(empty)"}</dd></div>
    <${Owners} list=${g.owners} label="Owners" />
    <${Owners} list=${g.application_owners} label="Application owners" />
  </dl>`;
}

function Remediation({ r }) {
  const what = { reported: "Report only: this PATCH was not sent", queued: "Queued for the update queue", patched: "Sent" };
  return html`<div data-testid="gv-remediation-plan" data-status=${r.status} data-mode=${r.mode}>
    <dl class="facts">
      <div class="fact"><dt>Mode</dt><dd>${r.mode}</dd></div>
      <div class="fact"><dt>Status</dt><dd>${r.status}${r.done_at ? ` (${fmtTime(r.done_at)} UTC)` : ""}</dd></div>
      <div class="fact"><dt>Why</dt><dd>${r.reason}${r.source ? ` (from ${r.source})` : ""}</dd></div>
      <div class="fact"><dt>Notes now</dt><dd class="mono">${r.before || "(empty)"}</dd></div>
      ${r.after != null && html`<div class="fact"><dt>Notes planned</dt><dd class="mono" data-testid="gv-remediation-after">${r.after}</dd></div>`}
    </dl>
    ${r.request &&
    html`<p class="small">${what[r.status] || r.status}:</p>
      <pre class="json gv-patch" data-testid="gv-patch" tabindex="0" aria-label="The notes PATCH">${`${r.request.method} ${r.request.url}\n${JSON.stringify(r.request.body, null, 2)}`}</pre>`}
  </div>`;
}
