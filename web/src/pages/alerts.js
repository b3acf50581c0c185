// The alerts page: counts at the top (every alert by status, the open ones by severity), the queue
// (filters in the query string, newest last seen first, paged; each rule id links to the Rules page),
// bulk triage of a selection (Analyst), the suppressions (Admin removes them) and, with ?id=, one
// alert's detail (alerts-detail.js). The server enforces every role; controls a role lacks are absent.
import { html } from "htm/preact";
import { useEffect, useLayoutEffect, useState } from "preact/hooks";
import { api, isAbort } from "../api.js";
import { ROLE, hasRole } from "../auth.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { navigate, queryParams } from "../state.js";
import { fmtNumber, fmtTime, fromLocalInput, isoSeconds, requestId, toLocalInput } from "../util.js";
import { AlertDetail, CLASSES, Cols, RuleLink, STATUSES, Sev, VERBS, groupLabel } from "./alerts-detail.js";

const SEVERITIES = ["critical", "high", "medium", "low", "informational"];
const DAY = 86400000;
const SPANS = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
const PAGE_SIZE = 50;
const MAX_BULK = 100; // POST /api/alerts/bulk takes this many ids

/** The list's filters as the address holds them. */
function readFilters(sp) {
  return {
    status: sp.getAll("status").filter((s) => STATUSES.includes(s)),
    severity: sp.getAll("severity").filter((s) => SEVERITIES.includes(s)),
    rule: sp.get("rule") || "",
    actor: sp.get("actor") || "",
    since: sp.get("since") || "",
    until: sp.get("until") || "",
  };
}

/** A link to this page: the filters, and more parameters (id, view). */
const alertsHref = (f, extra = {}) => pageHref("alerts", { ...f, ...extra });

function apiParams(f) {
  const since = SPANS[f.since] ? isoSeconds(Date.now() - SPANS[f.since]) : f.since;
  return { status: f.status, severity: f.severity, rule: f.rule, actor: f.actor, since, until: f.until };
}

/** Who (or what) an alert is about: the API's `actor`, else the values its rule groups by. */
const who = (a) => a.actor || groupLabel(a.group);

export function Page() {
  const sp = queryParams();
  const f = readFilters(sp);
  const id = sp.get("id");
  const view = id ? "detail" : sp.get("view") === "suppressions" ? "suppressions" : "list";
  return html`
    <main id="main" class="page alerts-page">
      ${view === "detail"
        ? html`<${AlertDetail} key=${id} id=${id} back=${alertsHref(f)} />`
        : html`
            <h1>Alerts</h1>
            <nav class="al-tabs" aria-label="Alerts views">
              <a href=${alertsHref(f)} data-testid="tab-alerts" aria-current=${view === "list" ? "page" : undefined}>Queue</a>
              <a href=${alertsHref(f, { view: "suppressions" })} data-testid="tab-suppressions"
                aria-current=${view === "suppressions" ? "page" : undefined}>Suppressions</a>
            </nav>
            ${view === "list" ? html`<${Queue} f=${f} />` : html`<${Suppressions} />`}
          `}
    </main>
  `;
}

function Summary({ tick }) {
  const [s, setS] = useState(null);
  // Layout effects here and in the queue: the requests leave before the first paint, not a frame after.
  useLayoutEffect(() => {
    const ctl = new AbortController();
    api("/alerts/summary", { signal: ctl.signal }).then(setS, (e) => isAbort(e) || showError(e, "The alert counts could not be loaded"));
    return () => ctl.abort();
  }, [tick]);
  // [testid suffix, count, link's filters]: a status's alerts, or the open ones of a severity
  const groups = [
    ["al-sum-status", "Alerts by status", STATUSES.map((v) => [v, ((s && s.by_status) || {})[v], { status: [v] }])],
    ["al-sum", "Open alerts by severity", SEVERITIES.map((v) => [v, ((s && s.open) || {})[v], { status: ["open"], severity: [v] }])],
  ];
  return html`
    <section class="al-summary" data-testid="alerts-summary" aria-label="Alert counts" aria-busy=${s ? "false" : "true"}>
      ${groups.map(
        ([id, title, cards]) => html`<div class="al-sum-group" role="group" aria-labelledby=${id}>
          <h2 id=${id} class="al-sum-title">${title}</h2>
          <div class="al-sum-cards">
            ${s &&
            cards.map(
              ([k, n, filters]) => html`<a class="al-card" data-testid=${`summary-${k}`} data-count=${n || 0} href=${alertsHref(filters)}>
                <strong>${fmtNumber(n || 0)}</strong> ${k}
              </a>`,
            )}
          </div>
        </div>`,
      )}
    </section>
  `;
}

function Checks({ name, label, values, chosen, f }) {
  const toggle = (v) => {
    const next = chosen.includes(v) ? chosen.filter((x) => x !== v) : [...chosen, v];
    navigate(alertsHref({ ...f, [name]: next }));
  };
  return html`
    <fieldset class="al-checks">
      <legend>${label}</legend>
      ${values.map(
        (v) => html`<label key=${v}>
          <input type="checkbox" data-testid=${`filter-${name}-${v}`} checked=${chosen.includes(v)} onChange=${() => toggle(v)} />
          ${v}
        </label>`,
      )}
    </fieldset>
  `;
}

function Filters({ f }) {
  const mode = SPANS[f.since] ? f.since : f.since || f.until ? "custom" : "";
  // Typed text stays local until applied (Enter, Apply or leaving the field): a re-render keeps it.
  const [t, setT] = useState({ rule: f.rule, actor: f.actor });
  useEffect(() => setT({ rule: f.rule, actor: f.actor }), [f.rule, f.actor]);
  const set = (patch) => navigate(alertsHref({ ...f, ...patch }));
  const apply = (e) => {
    e.preventDefault();
    set({ rule: t.rule.trim(), actor: t.actor.trim() });
  };
  const pickTime = (e) => {
    const v = e.currentTarget.value;
    set(v === "custom" ? { since: isoSeconds(Date.now() - 7 * DAY), until: "" } : { since: v, until: "" });
  };
  const time = (name) => (e) => set({ [name]: fromLocalInput(e.currentTarget.value) });
  const text = (name, label, max) => html`<div class="field">
    <label for=${`al-${name}`}>${label}</label>
    <input id=${`al-${name}`} data-testid=${`filter-${name}`} maxlength=${max} value=${t[name]}
      onInput=${(e) => setT({ ...t, [name]: e.currentTarget.value })} onChange=${apply} />
  </div>`;
  return html`
    <form class="al-filters" aria-label="Filter alerts" onSubmit=${apply}>
      <${Checks} name="status" label="Status" values=${STATUSES} chosen=${f.status} f=${f} />
      <${Checks} name="severity" label="Severity" values=${SEVERITIES} chosen=${f.severity} f=${f} />
      ${text("rule", "Rule id", 80)}
      ${text("actor", "Actor", 200)}
      <div class="field">
        <label for="al-time">Last seen</label>
        <select id="al-time" data-testid="filter-time" value=${mode} onChange=${pickTime}>
          <option value="">Any time</option>
          <option value="24h">Last 24 hours</option>
          <option value="7d">Last 7 days</option>
          <option value="30d">Last 30 days</option>
          <option value="custom">Between…</option>
        </select>
      </div>
      ${mode === "custom" &&
      html`<div class="field">
          <label for="al-since">From (UTC)</label>
          <input id="al-since" type="datetime-local" step="1" data-testid="filter-since" value=${toLocalInput(f.since)} onChange=${time("since")} />
        </div>
        <div class="field">
          <label for="al-until">To (UTC)</label>
          <input id="al-until" type="datetime-local" step="1" data-testid="filter-until" value=${f.until ? toLocalInput(f.until) : ""} onChange=${time("until")} />
        </div>`}
      <button type="submit" class="btn" data-testid="filters-apply">Apply</button>
      <a class="btn btn-quiet" href=${alertsHref({})} data-testid="clear-filters">Clear filters</a>
    </form>
  `;
}

function Queue({ f }) {
  const key = JSON.stringify(f);
  const analyst = hasRole(ROLE.analyst);
  const [r, setR] = useState({ items: [], loading: true });
  const [sel, setSel] = useState([]);
  const [tick, setTick] = useState(0);
  // A page, or the next one after `prev` with the same parameters (a relative `since` is resolved once:
  // the continuation is bound to the query it was made for).
  const load = (prev, signal) => {
    const params = prev ? prev.params : { ...apiParams(f), page_size: PAGE_SIZE };
    const items = prev ? prev.items : [];
    setR({ items, params, continuation: prev && prev.continuation, loading: true });
    api("/alerts", { params: { ...params, continuation: prev && prev.continuation }, signal }).then(
      (p) => setR({ items: [...items, ...p.items], continuation: p.continuation, params, loading: false }),
      (e) => {
        if (isAbort(e)) return;
        setR({ ...(prev || { items }), loading: false });
        showError(e, "The alerts could not be loaded");
      },
    );
  };
  useLayoutEffect(() => {
    const ctl = new AbortController();
    setSel([]);
    load(null, ctl.signal);
    return () => ctl.abort();
  }, [key]);
  const replace = (updated) => {
    const byId = new Map(updated.map((a) => [a.id, a]));
    setR((old) => ({ ...old, items: old.items.map((a) => byId.get(a.id) || a) }));
    setTick((n) => n + 1);
  };
  const ids = r.items.map((a) => a.id);
  const all = ids.length > 0 && ids.every((i) => sel.includes(i));
  const toggle = (i) => setSel(sel.includes(i) ? sel.filter((x) => x !== i) : [...sel, i]);
  return html`
    <${Summary} tick=${tick} />
    <${Filters} f=${f} />
    ${analyst && html`<${Bulk} sel=${sel} items=${r.items} setSel=${setSel} onDone=${replace} />`}
    <div class="results-wrap">
      <table class="results al-table" data-testid="alerts-table" aria-busy=${r.loading ? "true" : "false"}>
        <caption class="visually-hidden">Alerts, most recently seen first</caption>
        <${Cols} names=${["Last seen (UTC)", "Severity", "Alert", "Actor or group", "Status", "Classification", "Occurrences"]}>
          ${analyst &&
          html`<th scope="col" class="al-sel">
            <input type="checkbox" data-testid="select-all" aria-label="Select all alerts on this page" checked=${all}
              onChange=${() => setSel(all ? [] : ids)} />
          </th>`}
        <//>
        <tbody>
          ${r.items.map(
            (a) => html`<tr key=${a.id} data-testid="alert-row" data-alert-id=${a.id} data-status=${a.status}>
              ${analyst &&
              html`<td class="al-sel">
                <input type="checkbox" data-testid="alert-select" aria-label=${`Select: ${a.title}, ${who(a)}`} checked=${sel.includes(a.id)}
                  onChange=${() => toggle(a.id)} />
              </td>`}
              <td class="c-time"><time datetime=${a.last_seen}>${fmtTime(a.last_seen)}</time></td>
              <td><${Sev} s=${a.severity} /></td>
              <td>
                <a href=${alertsHref(f, { id: a.id })} data-testid="alert-link">${a.title}</a>
                <div class="small mono"><${RuleLink} id=${a.rule_id} /></div>
              </td>
              <td class="c-actor">${who(a)}</td>
              <td data-testid="alert-row-status">${a.status}</td>
              <td>${a.classification ? CLASSES[a.classification] || a.classification : ""}</td>
              <td class="num">${fmtNumber(a.occurrences || 0)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${r.loading && html`<p class="muted loading">Loading…</p>`}
      ${!r.loading && !r.items.length && html`<p class="empty" data-testid="no-alerts">No alerts match these filters.</p>`}
      ${r.continuation &&
      html`<div class="more">
        <button type="button" class="btn" data-testid="alerts-more" disabled=${r.loading} onClick=${() => load(r)}>More</button>
      </div>`}
    </div>
  `;
}

function Bulk({ sel, items, setSel, onDone }) {
  const [status, setStatus] = useState("");
  const [cls, setCls] = useState("");
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState(null);
  const name = (i) => {
    const a = items.find((x) => x.id === i);
    return a ? `${a.title} (${who(a)})` : i;
  };
  const apply = async (e) => {
    e.preventDefault();
    const body = { ids: sel };
    if (status) body.status = status;
    if (cls) body.classification = cls;
    if (comment.trim()) body.comment = comment.trim();
    setBusy(true);
    try {
      const { results } = await api("/alerts/bulk", { method: "POST", body, headers: { "Idempotency-Key": requestId() } });
      const ok = results.filter((x) => x.status === 200);
      const failed = results.filter((x) => x.status !== 200);
      setReport({ ok: ok.length, failed });
      setSel(failed.map((x) => x.id));
      if (!failed.length) setComment("");
      onDone(ok.map((x) => x.alert).filter(Boolean));
    } catch (error) {
      showError(error, "The bulk change failed");
    } finally {
      setBusy(false);
    }
  };
  const nothing = !status && !cls && !comment.trim();
  return html`
    <form class="al-bulk" aria-label="Change the selected alerts" data-testid="bulk" onSubmit=${apply}>
      <span data-testid="bulk-count">${sel.length} selected</span>
      <label for="al-b-status" class="visually-hidden">New status</label>
      <select id="al-b-status" data-testid="bulk-status" value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
        <option value="">Status: no change</option>
        ${STATUSES.map((s) => html`<option value=${s}>${VERBS[s]}</option>`)}
      </select>
      <label for="al-b-class" class="visually-hidden">Classification</label>
      <select id="al-b-class" data-testid="bulk-classification" value=${cls} onChange=${(e) => setCls(e.currentTarget.value)}>
        <option value="">Classification: no change</option>
        ${Object.entries(CLASSES).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select>
      <label for="al-b-comment" class="visually-hidden">Comment</label>
      <input id="al-b-comment" data-testid="bulk-comment" placeholder="Comment (optional)" maxlength="4000" value=${comment}
        onInput=${(e) => setComment(e.currentTarget.value)} />
      <button type="submit" class="btn btn-primary" data-testid="bulk-apply" disabled=${busy || !sel.length || nothing || sel.length > MAX_BULK}>
        ${sel.length > MAX_BULK ? `At most ${MAX_BULK} at once` : `Apply to ${sel.length} selected`}
      </button>
      <div role="status" class="al-bulk-report" data-testid="bulk-report">
        ${report &&
        html`${report.ok} updated${report.failed.length ? `, ${report.failed.length} failed:` : "."}
          <ul>
            ${report.failed.map(
              (x) => html`<li key=${x.id} data-testid="bulk-failure" data-alert-id=${x.id}>
                <strong>${name(x.id)}</strong>: ${x.title || `HTTP ${x.status}`}${x.detail ? ` (${x.detail})` : ""}
              </li>`,
            )}
          </ul>`}
      </div>
    </form>
  `;
}

function Suppressions() {
  const admin = hasRole(ROLE.admin);
  const [items, setItems] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    api("/suppressions", { signal: ctl.signal }).then(
      (p) => setItems(p.items),
      (e) => isAbort(e) || showError(e, "The suppressions could not be loaded"),
    );
    return () => ctl.abort();
  }, [tick]);
  const remove = async (s) => {
    try {
      await api(`/suppressions/${encodeURIComponent(s.id)}`, { method: "DELETE", headers: s.etag ? { "If-Match": s.etag } : {} });
      setTick((n) => n + 1);
    } catch (e) {
      showError(e, "The suppression could not be removed");
    }
  };
  if (!items) return html`<p class="muted loading">Loading…</p>`;
  return html`
    <p class="muted">Suppressed matches are counted here; they open no alert and notify no one.</p>
    <div class="results-wrap">
      <table class="results" data-testid="suppressions">
        <caption class="visually-hidden">Suppressions, newest first</caption>
        <${Cols} names=${["Rule", "Group", "Reason", "Created", "Expires (UTC)", "Matches", "Last match (UTC)", "State"]}>
          ${admin && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
        <//>
        <tbody>
          ${items.map(
            (s) => html`<tr key=${s.id} data-testid="suppression-row" data-suppression-id=${s.id} data-active=${String(Boolean(s.active))}>
              <td>${s.title || s.rule_id}<div class="muted small mono">${s.rule_id}</div></td>
              <td class="c-actor">${groupLabel(s.group) || s.group_key}</td>
              <td>${s.reason}</td>
              <td>${s.created_by}<div class="muted small">${fmtTime(s.created_at)}</div></td>
              <td>${fmtTime(s.expires_at)}</td>
              <td class="num" data-testid="suppression-matches">${fmtNumber(s.matches || 0)}</td>
              <td>${fmtTime(s.last_match_at)}</td>
              <td>${s.active ? "active" : "expired"}</td>
              ${admin &&
              html`<td>
                <button type="button" class="btn btn-small" data-testid="suppression-remove" aria-label=${`Remove the suppression of ${s.rule_id} for ${groupLabel(s.group) || s.group_key}`}
                  onClick=${() => remove(s)}>Remove</button>
              </td>`}
            </tr>`,
          )}
        </tbody>
      </table>
      ${!items.length && html`<p class="empty" data-testid="no-suppressions">No suppressions.</p>`}
    </div>
  `;
}
