// Health and drift: each source's watermark and lag, queue and poison-queue depths (Admin: replay a poison
// queue), each change-probe scope with its last backup run (Admin: run the probe now). GET /api/status,
// again every 30 s while the tab is visible; never two requests at once.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { hasRole, ROLE } from "../auth.js";
import { showError } from "../errors.js";
import { fmtNumber, fmtSpan, fmtTime, requestId } from "../util.js";

const EVERY_MS = 30_000;
const TICK_MS = 5_000; // how often the page checks whether a refresh is due
const MAX_REPLAY = 500;

const ms = (iso) => (iso ? new Date(iso).getTime() : NaN);
const lag = (doc, iso) => {
  const s = Math.round((ms(doc.generated_at) - ms(iso)) / 1000);
  return Number.isFinite(s) ? fmtSpan(Math.max(0, s)) : "";
};
const when = (iso) => (iso ? fmtTime(iso) : "never");
const isWeb = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

/** GET /api/status now and every EVERY_MS while visible. `refresh()` asks again: while a request is out, once
 * more after it (never two at once). */
function useStatus() {
  const [doc, setDoc] = useState(null);
  const [at, setAt] = useState(null);
  const refresh = useRef(() => {});
  useEffect(() => {
    let live = true;
    let busy = false;
    let again = false;
    let last = 0;
    const controller = new AbortController();
    const load = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      last = Date.now();
      try {
        const next = await api("/status", { signal: controller.signal });
        if (live) {
          setDoc(next);
          setAt(new Date().toISOString());
        }
      } catch (error) {
        if (live) showError(error, "The health status could not load");
      } finally {
        busy = false;
        if (again && live) {
          again = false;
          load();
        }
      }
    };
    const tick = () => {
      if (document.visibilityState === "visible" && Date.now() - last >= EVERY_MS) load();
    };
    refresh.current = load;
    load();
    const timer = setInterval(tick, TICK_MS);
    document.addEventListener("visibilitychange", tick);
    return () => {
      live = false;
      controller.abort();
      clearInterval(timer);
      document.removeEventListener("visibilitychange", tick);
    };
  }, []);
  return { doc, at, refresh: () => refresh.current() };
}

function Sources({ doc }) {
  return html`
    <section aria-labelledby="h-sources">
      <h2 id="h-sources">Sources</h2>
      ${doc.sources.length === 0
        ? html`<p class="muted">No source is enabled or has been polled.</p>`
        : html`<div class="health-wrap"><table class="health-table" data-testid="health-sources">
          <thead><tr><th scope="col">Source</th><th scope="col">State</th><th scope="col">Watermark</th><th scope="col">Lag</th>
            <th scope="col">Last success</th><th scope="col">Last error</th><th scope="col">Last run</th><th scope="col">Total</th>
            <th scope="col">Quarantined</th></tr></thead>
          <tbody>
            ${doc.sources.map(
              (s) => html`<tr key=${s.source} data-testid="source-row" data-source=${s.source} data-stale=${String(s.stale)}>
                <th scope="row" class="mono">${s.source}</th>
                <td><span class=${`pill ${s.stale ? "pill-bad" : "pill-ok"}`}>${s.stale ? "Stale" : "OK"}</span></td>
                <td>${when(s.watermark)}</td>
                <td data-testid="source-lag">${s.watermark ? lag(doc, s.watermark) : ""}</td>
                <td>${when(s.last_success)}</td>
                <td class="health-error">${s.last_error || s.last_blob_error || ""}</td>
                <td>${fmtNumber(s.last_count)}</td>
                <td>${fmtNumber(s.total_count)}</td>
                <td data-testid="source-quarantined">${fmtNumber(s.quarantined)}</td>
              </tr>`,
            )}
          </tbody>
        </table></div>`}
    </section>
  `;
}

/** The confirmation before a replay: a modal <dialog> naming the queue and the count. */
function ReplayDialog({ ask, onDone }) {
  const ref = useRef(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const close = (result) => {
    if (ref.current && ref.current.open) ref.current.close();
    onDone(result);
  };
  const confirm = async () => {
    setBusy(true);
    try {
      const result = await api(`/queues/${encodeURIComponent(ask.queue)}/replay`, {
        method: "POST",
        body: { max: ask.count },
        headers: { "Idempotency-Key": requestId() },
      });
      close(result);
    } catch (error) {
      showError(error, `Replaying ${ask.queue}-poison failed`);
      close(null);
    }
  };
  return html`
    <dialog ref=${ref} class="health-dialog" data-testid="replay-dialog" aria-labelledby="replay-title"
      onCancel=${(e) => { e.preventDefault(); if (!busy) close(null); }}>
      <h2 id="replay-title">Replay ${ask.queue}-poison?</h2>
      <p data-testid="replay-question">
        ${`Move ${ask.count === 1 ? "1 message" : `${fmtNumber(ask.count)} messages`} from `}<code>${ask.queue}-poison</code>${" back to "}<code>${ask.queue}</code>${ask.depth > ask.count ? ` (the first ${fmtNumber(ask.count)} of ${fmtNumber(ask.depth)})` : ""}?
        Each is delivered again to its worker.
      </p>
      <div class="health-actions">
        <button type="button" class="btn btn-primary" data-testid="replay-confirm" disabled=${busy} onClick=${confirm}>
          ${busy ? "Replaying…" : "Replay"}
        </button>
        <button type="button" class="btn" data-testid="replay-cancel" disabled=${busy} onClick=${() => close(null)}>Cancel</button>
      </div>
    </dialog>
  `;
}

function Queues({ doc, refresh }) {
  const [ask, setAsk] = useState(null);
  const [done, setDone] = useState("");
  const opener = useRef(null);
  const note = useRef(null);
  const admin = hasRole(ROLE.admin);
  const byName = Object.fromEntries(doc.queues.map((q) => [q.name, q]));
  const depth = (q) => (!q ? "" : q.depth === null ? "unreadable" : fmtNumber(q.depth));
  const onDone = (result) => {
    setAsk(null);
    if (result) {
      setDone(`Replayed ${fmtNumber(result.replayed)} from ${result.queue}-poison; ${fmtNumber(result.remaining)} remain.`);
      refresh();
      // The Replay button goes once the poison queue is empty: the focus moves to the outcome, once shown.
      setTimeout(() => note.current && note.current.focus(), 0);
    } else if (opener.current) opener.current.focus();
  };
  return html`
    <section aria-labelledby="h-queues">
      <h2 id="h-queues">Queues</h2>
      <div class="health-wrap"><table class="health-table" data-testid="health-queues">
        <thead><tr><th scope="col">Queue</th><th scope="col">Messages</th><th scope="col">Poison messages</th>
          ${admin && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}</tr></thead>
        <tbody>
          ${doc.queues.filter((q) => !q.poison).map((q) => {
            const poison = byName[`${q.name}-poison`];
            const stuck = poison && poison.depth > 0;
            return html`<tr key=${q.name} data-testid="queue-row" data-queue=${q.name}>
              <th scope="row" class="mono">${q.name}</th>
              <td data-testid="queue-depth" title=${q.error || undefined}>${depth(q)}</td>
              <td data-testid="poison-depth" class=${stuck ? "health-stuck" : ""} title=${(poison && poison.error) || undefined}>${depth(poison)}</td>
              ${admin && html`<td>${stuck && html`<button type="button" class="btn btn-small" data-testid="replay"
                aria-label=${`Replay ${q.name}-poison`}
                onClick=${(e) => { opener.current = e.currentTarget; setDone(""); setAsk({ queue: q.name, depth: poison.depth, count: Math.min(poison.depth, MAX_REPLAY) }); }}>Replay</button>`}</td>`}
            </tr>`;
          })}
        </tbody>
      </table></div>
      <p role="status" class="health-note" tabindex="-1" ref=${note} data-testid="replay-result">${done}</p>
      ${ask && html`<${ReplayDialog} ask=${ask} onDone=${onDone} />`}
    </section>
  `;
}

function runSummary(r) {
  const failed = r.sources.filter((s) => s.error).length;
  const records = r.sources.reduce((n, s) => n + (s.records || 0), 0);
  const triggers = r.probe.filter((p) => p.trigger).length;
  return `Run ${r.run_id} at ${fmtTime(r.started_at)}: ${r.sources.length} source(s) polled, ${failed} failed, ` +
    `${fmtNumber(records)} record(s); probe stepped ${r.probe.length} scope(s), ${triggers} trigger(s)` +
    (r.probe_error ? `; probe error: ${r.probe_error}` : ".");
}

function Probe({ doc, refresh }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState("");
  const run = async () => {
    setBusy(true);
    setResult("Running…");
    try {
      const report = await api("/probe/run", { method: "POST", body: {}, headers: { "Idempotency-Key": requestId() } });
      setResult(runSummary(report));
      refresh();
    } catch (error) {
      setResult("");
      showError(error, "The probe run failed");
    } finally {
      setBusy(false);
    }
  };
  return html`
    <section aria-labelledby="h-probe">
      <h2 id="h-probe">Change probe</h2>
      ${hasRole(ROLE.admin) && html`<p class="health-actions">
        <button type="button" class="btn" data-testid="probe-run" disabled=${busy} onClick=${run}>Run the probe now</button>
        <span role="status" class="health-note" data-testid="probe-run-result">${result}</span>
      </p>`}
      ${doc.probe.length === 0
        ? html`<p class="muted" data-testid="probe-off">The change probe is off (PROBE_ENABLED), or no scope is configured.</p>`
        : html`<div class="health-wrap"><table class="health-table" data-testid="health-probe">
          <thead><tr><th scope="col">Scope</th><th scope="col">Phase</th><th scope="col">Deadline</th><th scope="col">Pending changes</th>
            <th scope="col">Last trigger</th><th scope="col">Backup run</th></tr></thead>
          <tbody>
            ${doc.probe.map((p) => {
              const deadline = p.phase === "armed" ? `trigger after ${fmtTime(p.quiet_deadline)}` : p.phase === "cooldown" ? `cooldown until ${fmtTime(p.cooldown_until)}` : "";
              const pending = p.phase === "armed" ? `${fmtNumber(p.burst_count)} since ${fmtTime(p.burst_first_at)}` : p.pending ? "yes, after the cooldown" : "none";
              const r = p.last_run;
              return html`<tr key=${p.scope} data-testid="probe-row" data-scope=${p.scope}>
                <th scope="row" class="mono">${p.scope}</th>
                <td data-testid="probe-phase">${p.phase}${p.outbox_pending ? " (trigger not yet queued)" : ""}</td>
                <td>${deadline}</td>
                <td>${pending}</td>
                <td data-testid="probe-last-trigger">${p.last_triggered_at ? fmtTime(p.last_triggered_at) : "never"}
                  ${p.last_trigger_id && html`<div class="mono small muted">${p.last_trigger_id}</div>`}</td>
                <td>${!r ? "" : isWeb(r.run_url)
                  ? html`<a href=${r.run_url} target="_blank" rel="noopener noreferrer" data-testid="probe-run-link">Run ${r.run_id}</a>`
                  : r.state === "queued" ? `Run ${r.run_id}` : r.state === "unknown" ? "outcome unknown, retrying" : "starting"}</td>
              </tr>`;
            })}
          </tbody>
        </table></div>`}
    </section>
  `;
}

export function Page() {
  const { doc, at, refresh } = useStatus();
  return html`
    <main id="main" class="page health-page">
      <div class="health-head">
        <h1>Health</h1>
        <p class="muted small" data-testid="health-refreshed" data-at=${at || ""}>
          ${at ? `Refreshed ${fmtTime(at)} UTC, every 30 s while this tab is visible.` : "Loading…"}
        </p>
        <button type="button" class="btn btn-small" data-testid="health-refresh" onClick=${refresh}>Refresh</button>
      </div>
      ${doc && doc.configuration.length > 0 && html`<section class="health-config" data-testid="health-config" aria-label="Settings problems">
        <strong>Settings problems</strong>
        <ul>${doc.configuration.map((c) => html`<li key=${c.setting}><code>${c.setting}</code>: ${c.detail}</li>`)}</ul>
      </section>`}
      ${doc && html`<${Sources} doc=${doc} /><${Queues} doc=${doc} refresh=${refresh} /><${Probe} doc=${doc} refresh=${refresh} />`}
    </main>
  `;
}
