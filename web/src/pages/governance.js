// The Governance page (/governance): service principals checked by the validators (issue 18). The summary
// strip (open findings by severity, objects failing, the update mode from /api/status) and the last
// discovery (Admin: run one, optionally a full seed); the findings (filters in the query string, paged with
// `next`); with ?id=, one service principal (governance-object.js); with ?view=activities, the discovery,
// evaluation and update batches. The server enforces every role; controls a role lacks are absent.
import { html } from "htm/preact";
import { useEffect, useLayoutEffect, useState } from "preact/hooks";
import { api, isAbort } from "../api.js";
import { ROLE, hasRole } from "../auth.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { navigate, queryParams } from "../state.js";
import { fmtNumber, fmtTime, requestId } from "../util.js";
import { Cols, GovObject, Sev, isGuid } from "./governance-object.js";

/** shared.rules.model.Severity, most severe first. */
const SEVERITIES = ["critical", "high", "medium", "low", "informational"];
/** shared.governance.config.VALIDATOR_IDS. */
const VALIDATORS = [
  "notes-lists-owners", "ownerless", "credential-expiry", "credential-lifetime", "high-privilege-permission",
  "secret-with-privileged-role", "unverified-multitenant",
];
const STATES = ["open", "accepted", "resolved"];
const KINDS = ["discovery", "evaluation", "update"];
const COUNTS = ["discovered", "evaluated", "passed", "failed", "updated", "skipped", "errors"];
const PAGE_SIZE = 50;

const pick = (v, allowed) => (allowed.includes(v) ? v : "");

/** The list's filters as the address holds them (anything else is left out). */
function readFilters(sp) {
  const object = (sp.get("object") || "").trim();
  return {
    validator: pick(sp.get("validator"), VALIDATORS),
    severity: pick(sp.get("severity"), SEVERITIES),
    state: pick(sp.get("state"), STATES),
    object: isGuid(object) ? object.toLowerCase() : "",
  };
}

/** A link to this page: the filters, and more parameters (id, view, kind). */
const govHref = (f, extra = {}) => pageHref("governance", { ...f, ...extra });

/** "discovered 3 · evaluated 3 · failed 1": the counts that are not zero. */
const countsText = (c) =>
  COUNTS.filter((k) => c && c[k]).map((k) => `${k} ${fmtNumber(c[k])}`).join(" · ") || "nothing counted";

export function Page() {
  const sp = queryParams();
  const f = readFilters(sp);
  const id = sp.get("id");
  const view = id ? "object" : sp.get("view") === "activities" ? "activities" : "findings";
  return html`
    <main id="main" class="page alerts-page gv-page">
      ${view === "object"
        ? html`<${GovObject} key=${id} id=${id} back=${govHref(f)} />`
        : html`
            <h1>Governance</h1>
            <nav class="al-tabs" aria-label="Governance views">
              <a href=${govHref(f)} data-testid="gv-tab-findings" aria-current=${view === "findings" ? "page" : undefined}>Findings</a>
              <a href=${govHref({}, { view: "activities" })} data-testid="gv-tab-activities"
                aria-current=${view === "activities" ? "page" : undefined}>Activities</a>
            </nav>
            ${view === "findings" ? html`<${Findings} f=${f} />` : html`<${Activities} kind=${pick(sp.get("kind"), KINDS)} />`}
          `}
    </main>
  `;
}

/** GET `path` while mounted (again when `deps` change): null while loading, false after a failure. */
function useLoad(path, params, what, deps) {
  const [v, setV] = useState(null);
  useLayoutEffect(() => {
    const ctl = new AbortController();
    setV(null);
    api(path, { params, signal: ctl.signal }).then(setV, (e) => {
      if (isAbort(e)) return;
      setV(false);
      showError(e, `${what} could not be loaded`);
    });
    return () => ctl.abort();
  }, deps);
  return v;
}

function Summary({ tick }) {
  const s = useLoad("/governance/findings/summary", null, "The governance counts", [tick]);
  const status = useLoad("/status", null, "The update mode", [tick]);
  const bySev = (s && s.by_severity) || {};
  const mode = status && status.governance ? status.governance.mode : "";
  return html`
    <section class="al-summary gv-summary" data-testid="gv-summary" aria-label="Governance counts" aria-busy=${s ? "false" : "true"}>
      <div class="al-sum-group" role="group" aria-labelledby="gv-sum">
        <h2 id="gv-sum" class="al-sum-title">Open findings by severity</h2>
        <div class="al-sum-cards">
          ${s &&
          SEVERITIES.map(
            (v) => html`<a class="al-card" data-testid=${`gv-sev-${v}`} data-count=${bySev[v] || 0} href=${govHref({ severity: v, state: "open" })}>
              <strong>${fmtNumber(bySev[v] || 0)}</strong> ${v}
            </a>`,
          )}
        </div>
      </div>
      <div class="al-sum-group" role="group" aria-labelledby="gv-sum-obj">
        <h2 id="gv-sum-obj" class="al-sum-title">Service principals</h2>
        <div class="al-sum-cards">
          ${s &&
          html`<span class="al-card" data-testid="gv-objects-failing" data-count=${s.objects_failing || 0}>
            <strong>${fmtNumber(s.objects_failing || 0)}</strong> failing
          </span>`}
          ${mode &&
          html`<span class="al-card" data-testid="gv-mode" data-mode=${mode}
            title=${mode === "Update" ? "Notes remediation sends its PATCH to Graph" : "Notes remediation only records the PATCH it would send"}>
            <strong>${mode}</strong> mode
          </span>`}
        </div>
      </div>
    </section>
  `;
}

function LastDiscovery({ tick, onRun }) {
  const r = useLoad("/governance/activities", { kind: "discovery", limit: 1 }, "The last discovery", [tick]);
  const a = r && r.items && r.items[0];
  return html`
    <section class="gv-discovery" aria-labelledby="gv-disc">
      <h2 id="gv-disc">Last discovery</h2>
      ${r &&
      (a
        ? html`<p data-testid="gv-last-discovery" data-activity-id=${a.id} data-status=${a.status}>
            <time datetime=${a.started_at}>${fmtTime(a.started_at)}</time> UTC · ${a.trigger} · ${a.status}
            ${a.lock === "held" ? " (another discovery held the lock)" : ""} · ${countsText(a.counts)}
          </p>`
        : html`<p class="muted" data-testid="gv-no-discovery">No discovery has run yet.</p>`)}
      ${hasRole(ROLE.admin) && html`<${RunDiscovery} onRun=${onRun} />`}
    </section>
  `;
}

function RunDiscovery({ onRun }) {
  const [full, setFull] = useState(false);
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState("");
  const run = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const response = await api("/governance/discovery", {
        method: "POST",
        body: { full_seed: full },
        headers: { "Idempotency-Key": requestId() },
        as: "response",
      });
      const body = await response.json();
      setSaid(`${response.status}: ${body.full_seed ? "full seed" : "discovery"} queued as ${body.activity_id}.`);
      onRun();
    } catch (error) {
      showError(error, "The discovery could not be queued");
    } finally {
      setBusy(false);
    }
  };
  return html`
    <form class="inline gv-run" onSubmit=${run}>
      <label><input type="checkbox" data-testid="gv-full-seed" checked=${full} onChange=${(e) => setFull(e.currentTarget.checked)} />
        Full seed (read every service principal again)</label>
      <button type="submit" class="btn" data-testid="gv-run" disabled=${busy}>Run discovery</button>
      <span role="status" class="muted small" data-testid="gv-run-result">${said}</span>
    </form>
  `;
}

function Filters({ f }) {
  const [object, setObject] = useState(f.object);
  const [bad, setBad] = useState(false);
  useEffect(() => setObject(f.object), [f.object]);
  const set = (patch) => navigate(govHref({ ...f, ...patch }));
  const apply = (e) => {
    e.preventDefault();
    const v = object.trim();
    setBad(Boolean(v) && !isGuid(v));
    if (!v || isGuid(v)) set({ object: v.toLowerCase() });
  };
  const select = (name, label, values, any) => html`<div class="field">
    <label for=${`gv-${name}`}>${label}</label>
    <select id=${`gv-${name}`} data-testid=${`gv-filter-${name}`} value=${f[name]} onChange=${(e) => set({ [name]: e.currentTarget.value })}>
      <option value="">${any}</option>
      ${values.map((v) => html`<option value=${v}>${v}</option>`)}
    </select>
  </div>`;
  return html`
    <form class="al-filters" aria-label="Filter findings" onSubmit=${apply}>
      ${select("validator", "Validator", VALIDATORS, "Any validator")}
      ${select("severity", "Severity", SEVERITIES, "Any severity")}
      ${select("state", "State", STATES, "Open and accepted")}
      <div class="field">
        <label for="gv-object">Service principal object id</label>
        <input id="gv-object" data-testid="gv-filter-object" class="mono" maxlength="36" value=${object} aria-invalid=${bad ? "true" : undefined}
          aria-describedby=${bad ? "gv-object-error" : undefined} onInput=${(e) => setObject(e.currentTarget.value)} onChange=${apply} />
        ${bad && html`<span id="gv-object-error" class="field-error" data-testid="gv-filter-object-error">An object id is a GUID.</span>`}
      </div>
      <button type="submit" class="btn" data-testid="gv-filters-apply">Apply</button>
      <a class="btn btn-quiet" href=${govHref({})} data-testid="gv-clear-filters">Clear filters</a>
    </form>
  `;
}

function Findings({ f }) {
  const key = JSON.stringify(f);
  const [tick, setTick] = useState(0);
  const [r, setR] = useState({ items: [], loading: true });
  const load = (prev, signal) => {
    const items = prev ? prev.items : [];
    setR({ ...(prev || { items }), loading: true });
    const params = { ...f, limit: PAGE_SIZE, continuation: prev ? prev.next : undefined };
    api("/governance/findings", { params, signal }).then(
      (p) => setR({ items: [...items, ...p.items], next: p.next || p.continuation || null, loading: false }),
      (e) => {
        if (isAbort(e)) return;
        setR({ ...(prev || { items }), loading: false });
        showError(e, "The findings could not be loaded");
      },
    );
  };
  useLayoutEffect(() => {
    const ctl = new AbortController();
    load(null, ctl.signal);
    return () => ctl.abort();
  }, [key]);
  return html`
    <${Summary} tick=${tick} />
    <${LastDiscovery} tick=${tick} onRun=${() => setTick((n) => n + 1)} />
    <h2>Findings</h2>
    <${Filters} f=${f} />
    <div class="results-wrap">
      <table class="results gv-table" data-testid="gv-findings" aria-busy=${r.loading ? "true" : "false"}>
        <caption class="visually-hidden">Findings, most recently seen first</caption>
        <${Cols} names=${["Last seen (UTC)", "Severity", "Service principal", "Validator", "Finding", "State"]} />
        <tbody>
          ${r.items.map(
            (x) => html`<tr key=${x.id} data-testid="gv-finding" data-finding-id=${x.id} data-state=${x.state} data-validator=${x.validator_id}>
              <td class="c-time"><time datetime=${x.last_seen}>${fmtTime(x.last_seen)}</time></td>
              <td><${Sev} s=${x.severity} /></td>
              <td>
                <a href=${govHref(f, { id: x.object_id })} data-testid="gv-object-link">${x.object_name || x.object_id}</a>
                <div class="muted small mono">${x.object_id}</div>
              </td>
              <td class="mono small">${x.validator_id}</td>
              <td>${x.message}<div class="muted small mono">${x.subject}</div></td>
              <td data-testid="gv-finding-state">${x.state}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${r.loading && html`<p class="muted loading">Loading…</p>`}
      ${!r.loading && !r.items.length && html`<p class="empty" data-testid="gv-no-findings">No findings match these filters.</p>`}
      ${r.next &&
      html`<div class="more">
        <button type="button" class="btn" data-testid="gv-more" disabled=${r.loading} onClick=${() => load(r)}>More</button>
      </div>`}
    </div>
  `;
}

function Activities({ kind }) {
  const r = useLoad("/governance/activities", { kind, limit: PAGE_SIZE }, "The activities", [kind]);
  return html`
    <form class="al-filters" aria-label="Filter activities" onSubmit=${(e) => e.preventDefault()}>
      <div class="field">
        <label for="gv-kind">Kind</label>
        <select id="gv-kind" data-testid="gv-filter-kind" value=${kind}
          onChange=${(e) => navigate(govHref({}, { view: "activities", kind: e.currentTarget.value }))}>
          <option value="">Every kind</option>
          ${KINDS.map((k) => html`<option value=${k}>${k}</option>`)}
        </select>
      </div>
    </form>
    <div class="results-wrap">
      <table class="results gv-table" data-testid="gv-activities" aria-busy=${r === null ? "true" : "false"}>
        <caption class="visually-hidden">Discovery runs, evaluation and update batches, newest first</caption>
        <${Cols} names=${["Started (UTC)", "Kind", "Trigger", "Status", "Lock", "Counts", "Errors"]} />
        <tbody>
          ${((r && r.items) || []).map(
            (a) => html`<tr key=${a.id} data-testid="gv-activity" data-activity-id=${a.id} data-kind=${a.kind} data-status=${a.status}>
              <td class="c-time"><time datetime=${a.started_at}>${fmtTime(a.started_at)}</time>
                <div class="muted small">${a.ended_at ? `ended ${fmtTime(a.ended_at)}` : "not ended"}</div></td>
              <td>${a.kind}<div class="muted small mono">${a.id}</div></td>
              <td>${a.trigger}</td>
              <td>${a.status}</td>
              <td>${a.lock}</td>
              <td data-testid="gv-activity-counts">${countsText(a.counts)}</td>
              <td data-testid="gv-activity-errors">
                ${(a.errors || []).length
                  ? html`<ul class="gv-errors">${a.errors.map((x, i) => html`<li key=${i}>${fmtTime(x.at)} ${x.object_id ? html`<span class="mono">${x.object_id}</span> ` : ""}${x.message}</li>`)}</ul>`
                  : "none"}
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${r === null && html`<p class="muted loading">Loading…</p>`}
      ${r && !r.items.length && html`<p class="empty" data-testid="gv-no-activities">No activities yet.</p>`}
    </div>
  `;
}
