// Home: open alerts by severity (each a link to the alerts queue filtered), source health at a glance, the
// last backup trigger and the pinned saved searches. Three reads at once: /api/alerts/summary, /api/status
// and /api/searches?pinned=true (a 404 or 405 there means saved searches are not available: the section stays
// empty, without an error).
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { fmtNumber, fmtTime } from "../util.js";

const SEVERITIES = ["critical", "high", "medium", "low", "informational"];
const isWeb = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

function load(path, options, what) {
  return api(path, options).catch((error) => {
    if (error.name !== "AbortError") showError(error, `${what} could not load`);
    return null;
  });
}

function Alerts({ summary }) {
  if (!summary) return null;
  const severities = [...SEVERITIES.filter((s) => s in summary.open), ...Object.keys(summary.open).filter((s) => !SEVERITIES.includes(s))];
  return html`
    <section class="home-card" aria-labelledby="h-alerts" data-testid="home-alerts">
      <h2 id="h-alerts">Open alerts</h2>
      <p class="home-total"><a href=${pageHref("alerts", { status: "open" })} data-testid="home-alerts-total">
        ${fmtNumber(summary.total_open)} open</a></p>
      <ul class="home-severities">
        ${severities.map(
          (s) => html`<li key=${s}>
            <a href=${pageHref("alerts", { status: "open", severity: s })} class="home-sev"
              data-testid="home-alert-severity" data-severity=${s} data-count=${summary.open[s]}>
              <span class="home-count">${fmtNumber(summary.open[s])}</span> <span class=${`sev sev-${s}`}>${s}</span></a>
          </li>`,
        )}
      </ul>
    </section>
  `;
}

function Sources({ status }) {
  if (!status) return null;
  const stale = status.sources.filter((s) => s.stale);
  const poison = status.queues.filter((q) => q.poison && q.depth > 0);
  return html`
    <section class="home-card" aria-labelledby="h-sources" data-testid="home-sources">
      <h2 id="h-sources">Sources</h2>
      <p data-testid="home-sources-healthy" data-healthy=${status.sources.length - stale.length} data-total=${status.sources.length}>
        ${fmtNumber(status.sources.length - stale.length)} of ${fmtNumber(status.sources.length)} healthy</p>
      ${stale.length > 0 && html`<p>Stale: ${stale.map((s, i) => html`${i ? ", " : ""}<span class="mono" data-testid="home-stale-source">${s.source}</span>`)}</p>`}
      ${poison.length > 0 && html`<p data-testid="home-poison">Poison messages: ${poison.map((q, i) => html`${i ? ", " : ""}<span class="mono">${q.name}</span> ${fmtNumber(q.depth)}`)}</p>`}
      <p><a href=${pageHref("health")} data-testid="home-health-link">Health and drift</a></p>
    </section>
  `;
}

function Backup({ status }) {
  if (!status) return null;
  const last = status.probe.filter((p) => p.last_triggered_at).sort((a, b) => (a.last_triggered_at < b.last_triggered_at ? 1 : -1))[0];
  const run = last && last.last_run;
  return html`
    <section class="home-card" aria-labelledby="h-backup" data-testid="home-backup">
      <h2 id="h-backup">Last backup trigger</h2>
      ${!last
        ? html`<p class="muted" data-testid="home-backup-none">${status.probe.length ? "No backup triggered yet." : "The change probe is off."}</p>`
        : html`<p><span data-testid="home-backup-time">${fmtTime(last.last_triggered_at)}</span> UTC,
            scope <span class="mono" data-testid="home-backup-scope">${last.scope}</span></p>
          <p>${!run ? "No pipeline run recorded." : isWeb(run.run_url)
            ? html`<a href=${run.run_url} target="_blank" rel="noopener noreferrer" data-testid="home-backup-run">Azure DevOps run ${run.run_id}</a>`
            : run.state === "queued" ? `Azure DevOps run ${run.run_id}` : `Run ${run.state}.`}</p>`}
    </section>
  `;
}

function Pinned({ searches }) {
  const items = (searches && searches.items) || [];
  return html`
    <section class="home-card" aria-labelledby="h-pinned" data-testid="home-pinned">
      <h2 id="h-pinned">Pinned searches</h2>
      ${items.length === 0
        ? html`<p class="muted" data-testid="home-pinned-none">No pinned searches.</p>`
        : html`<ul class="home-list">${items.map(
            (s) => html`<li key=${s.id}><a href=${`/?${String(s.query || "").replace(/^\?/, "")}`} data-testid="home-pinned-search"
              data-search-id=${s.id}>${s.name}</a> <span class="muted small">${s.owner_name}${s.visibility ? `, ${s.visibility}` : ""}</span></li>`,
          )}</ul>`}
    </section>
  `;
}

export function Page() {
  const [data, setData] = useState(null);
  useEffect(() => {
    const controller = new AbortController();
    const signal = controller.signal;
    const searches = api("/searches", { params: { pinned: "true" }, signal }).catch((error) => {
      if (error.status === 404 || error.status === 405) return null; // no saved searches on this API: none pinned
      if (error.name !== "AbortError") showError(error, "Pinned searches could not load");
      return null;
    });
    Promise.all([
      load("/alerts/summary", { signal }, "Open alerts"),
      load("/status", { signal }, "Source health"),
      searches,
    ]).then(([summary, status, pinned]) => {
      if (!signal.aborted) setData({ summary, status, pinned });
    });
    return () => controller.abort();
  }, []);
  return html`
    <main id="main" class="page home-page" aria-busy=${data ? "false" : "true"}>
      <h1>Home</h1>
      ${!data
        ? html`<p class="muted">Loading…</p>`
        : html`<div class="home-grid" data-testid="home">
            <${Alerts} summary=${data.summary} />
            <${Sources} status=${data.status} />
            <${Backup} status=${data.status} />
            <${Pinned} searches=${data.pinned} />
          </div>`}
    </main>
  `;
}
