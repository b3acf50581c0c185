// Rules page: the rule list (severity, enabled, MITRE, the last 7 days' matches and alerts), switching a
// rule on or off, and one rule's YAML in an editor: the server's problems at their lines, "Test before
// saving" against recent events, and saving under the rule's version (If-Match), with a conflict notice
// that keeps the user's text. State in the address: ?rule=<id>&last=<N>.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { ROLE, hasRole } from "../auth.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { navigate, queryParams } from "../state.js";
import { fmtNumber, fmtTime, isoSeconds, requestId } from "../util.js";

const rulePath = (id) => `/rules/${encodeURIComponent(id)}`;
// A stale If-Match: 412 Precondition Failed, type …/rule-changed (a 409 is another conflict, shown as an error).
const changed = (error) => error && error.status === 412 && /\/rule-changed$/.test((error.problem && error.problem.type) || "");
const save = (id, body, etag) =>
  api(rulePath(id), { method: "PUT", body, headers: { "If-Match": etag, "Idempotency-Key": requestId() } });

function Mitre({ ids }) {
  return ids.map(
    (t, i) => html`${i ? ", " : ""}<a href=${`https://attack.mitre.org/techniques/${t.replace(".", "/")}/`} target="_blank" rel="noopener">${t}</a>`,
  );
}

function RuleList() {
  const [doc, setDoc] = useState(null);
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(null);
  const admin = hasRole(ROLE.admin);
  const load = () =>
    api("/rules")
      .then(setDoc)
      .catch((e) => {
        setDoc((d) => d || false);
        showError(e, "The rules could not load");
      });
  useEffect(() => {
    load();
  }, []);
  const put = (id, fields) => setDoc((d) => ({ ...d, rules: d.rules.map((r) => (r.id === id ? { ...r, ...fields } : r)) }));
  const toggle = async (rule, enabled) => {
    setBusy(rule.id);
    put(rule.id, { enabled }); // shown at once; put back if the save fails
    try {
      const saved = await save(rule.id, { enabled }, rule.etag);
      put(rule.id, saved);
      setStatus(`${saved.title}: ${enabled ? "enabled" : "disabled"}.`);
    } catch (e) {
      put(rule.id, { enabled: rule.enabled });
      if (!changed(e)) showError(e, `${rule.title} could not be changed`);
      else {
        setStatus(`${rule.title} was changed by someone else meanwhile; the list is reloaded, nothing was changed.`);
        await load();
      }
    }
    setBusy(null);
  };
  if (doc === false) return html`<p>The rules could not be loaded (the error is shown above).</p>`;
  if (!doc) return html`<p class="muted" aria-busy="true">Loading the rules…</p>`;
  const since = doc.activity_since ? ` since ${fmtTime(doc.activity_since)} UTC` : "";
  return html`
    <p class="muted" data-testid="rules-origin">
      ${fmtNumber(doc.count)} rules from <code>${doc.origin}</code>${doc.overridden ? " (the override blob)" : " (the shipped file)"}.
    </p>
    ${doc.last_error &&
    html`<p class="note rules-warn" data-testid="rules-last-error">The latest override was refused, these rules stay in force: ${doc.last_error}</p>`}
    <p role="status" class="rules-status" data-testid="rules-status">${status}</p>
    <div class="rules-wrap">
      <table class="rules-table" data-testid="rules-list">
        <caption class="visually-hidden">Alert rules, with their matches and alerts in the last 7 days${since}</caption>
        <thead>
          <tr>
            <th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">MITRE</th><th scope="col">Enabled</th>
            <th scope="col" class="num" title=${`last 7 days${since}`}>Matches (7 d)</th>
            <th scope="col" class="num" title=${`last 7 days${since}`}>Alerts (7 d)</th>
          </tr>
        </thead>
        <tbody>
          ${doc.rules.map((r) => {
            const a = r.last_7_days;
            return html`<tr key=${r.id} data-testid="rule-row" data-rule-id=${r.id}>
              <td>
                <a href=${pageHref("rules", { rule: r.id })} data-testid="rule-open">${r.title}</a>
                <div class="mono small muted">${r.id}</div>
              </td>
              <td><span class=${`sev sev-${r.severity}`} data-testid="rule-severity">${r.severity}</span></td>
              <td data-testid="rule-mitre"><${Mitre} ids=${r.mitre} /></td>
              <td data-testid="rule-enabled" data-enabled=${String(r.enabled)}>
                ${admin
                  ? html`<input type="checkbox" data-testid="rule-toggle" checked=${r.enabled} disabled=${busy === r.id}
                      aria-label=${`Enabled: ${r.title}`} onChange=${(e) => toggle(r, e.currentTarget.checked)} />`
                  : r.enabled ? "Yes" : "No"}
              </td>
              <td class="num" data-testid="rule-matches">${a ? (a.matches === null ? html`<span title="hidden: you cannot see every service">—</span>` : fmtNumber(a.matches)) : "—"}</td>
              <td class="num" data-testid="rule-alerts">${a ? fmtNumber(a.alerts) : "—"}</td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>
  `;
}

/** The line (1-based) of a position in the text. */
const lineAt = (text, pos) => text.slice(0, pos).split("\n").length;

function Problems({ errors, goTo }) {
  if (!errors.length) return null;
  return html`<div class="rule-problems" id="rule-problems" role="alert" data-testid="rule-problems">
    <p><strong>${errors.length === 1 ? "1 problem" : `${errors.length} problems`}</strong>${errors.some((e) => e.line) ? " (F8 in the editor goes to the next one)" : ""}:</p>
    <ul>
      ${errors.map((e) => html`<li>${e.line
        ? html`<button type="button" class="btn-link" data-testid="rule-problem" data-line=${e.line} onClick=${() => goTo(e.line)}>Line ${e.line}</button>: `
        : ""}<code>${e.field}</code>: ${e.message}</li>`)}
    </ul>
  </div>`;
}

function RuleEditor({ id, last }) {
  const admin = hasRole(ROLE.admin);
  const area = useRef(null);
  const [rule, setRule] = useState(null); // the version the text is based on
  const [text, setText] = useState("");
  const [errors, setErrors] = useState([]);
  const [result, setResult] = useState(null);
  const [current, setCurrent] = useState(null); // the version someone else saved (after a conflict)
  const [conflict, setConflict] = useState(false);
  const [busy, setBusy] = useState("");
  const [status, setStatus] = useState("");
  const [caret, setCaret] = useState(1);
  useEffect(() => {
    api(rulePath(id))
      .then((r) => {
        setRule(r);
        setText(r.yaml);
      })
      .catch((e) => {
        setRule(false);
        showError(e, `Rule ${id} could not load`);
      });
  }, [id]);
  if (rule === false) return html`<p>The rule could not be loaded (the error is shown above). <a href=${pageHref("rules")}>All rules</a></p>`;
  if (!rule) return html`<p class="muted" aria-busy="true">Loading the rule…</p>`;

  const lines = text.split("\n");
  const byLine = new Map();
  for (const e of errors) if (e.line) byLine.set(e.line, [...(byLine.get(e.line) || []), e]);
  const lineNotes = byLine.get(caret);
  const goTo = (n) => {
    const el = area.current;
    const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0);
    el.focus();
    el.setSelectionRange(start, start + (lines[n - 1] || "").length);
    setCaret(n);
  };
  const onKeyDown = (e) => {
    const el = e.currentTarget;
    if (e.key === "F8" && byLine.size) {
      e.preventDefault();
      const at = lineAt(el.value, el.selectionStart);
      const sorted = [...byLine.keys()].sort((a, b) => a - b);
      const next = e.shiftKey ? [...sorted].reverse().find((n) => n < at) ?? sorted[sorted.length - 1] : sorted.find((n) => n > at) ?? sorted[0];
      goTo(next);
    } else if (e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !el.readOnly) {
      // keep the indentation of the line (deeper after "key:"), as a YAML editor does
      e.preventDefault();
      const line = el.value.slice(0, el.selectionStart).split("\n").pop();
      const pad = line.match(/^\s*(- )?/)[0].replace("-", " ") + (/:\s*$/.test(line) ? "  " : "");
      if (!document.execCommand("insertText", false, `\n${pad}`)) el.setRangeText(`\n${pad}`, el.selectionStart, el.selectionEnd, "end");
      setText(el.value);
    }
  };
  const onCaret = (e) => setCaret(lineAt(e.currentTarget.value, e.currentTarget.selectionStart));
  const failed = (e, what) => {
    const problems = (e.problem && e.problem.errors) || [];
    if (e.status === 400 && problems.length) {
      setErrors(problems);
      setStatus(`${what}: the rule has ${problems.length === 1 ? "a problem" : `${problems.length} problems`}.`);
    } else showError(e, `${what} failed`);
  };
  const test = async () => {
    setBusy("test");
    setResult(null);
    try {
      const r = await api("/rules/test", { method: "POST", body: { yaml: text, last } });
      setErrors([]);
      setResult(r);
      setStatus(`Tested on ${fmtNumber(r.evaluated)} events: ${fmtNumber(r.matched)} matched.`);
    } catch (e) {
      failed(e, "Testing");
    }
    setBusy("");
  };
  const submit = async () => {
    setBusy("save");
    try {
      const saved = await save(id, { yaml: text }, rule.etag);
      setRule(saved);
      setText(saved.yaml);
      setErrors([]);
      setConflict(false);
      setCurrent(null);
      setStatus(`Saved at ${fmtTime(new Date().toISOString())} UTC.`);
    } catch (e) {
      if (changed(e)) {
        setConflict(true);
        setStatus("Not saved: someone else changed this rule meanwhile.");
      } else failed(e, "Saving");
    }
    setBusy("");
  };
  const reload = async () => {
    try {
      const fresh = await api(rulePath(id));
      setCurrent(fresh);
      setRule(fresh); // a save now goes over this version, with the text as it is
      setConflict(false);
      setStatus("The current version is shown below your text; saving now replaces it with your text.");
    } catch (e) {
      showError(e, `Rule ${id} could not load`);
    }
  };
  const setLast = (value) => navigate(pageHref("rules", { rule: id, last: value }), { replace: true });

  return html`
    <p><a href=${pageHref("rules")} data-testid="rules-back">← All rules</a></p>
    <h2 class="rule-title">${rule.title} <span class="mono small muted">${id}</span></h2>
    ${!admin && html`<p class="note" data-testid="rule-read-only">Read-only: editing and testing rules needs the Admin role.</p>`}
    <label for="rule-yaml" class="rule-label">The rule as YAML</label>
    <p class="small muted" id="rule-hint">The rule file's format (README, "Rule format"). Enter keeps the indentation; Tab leaves the editor.</p>
    <div class=${`rule-editor${errors.length ? " has-errors" : ""}`} data-testid="rule-editor">
      <pre class="rule-gutter" aria-hidden="true">${lines.map((_, i) => html`<span class=${byLine.has(i + 1) ? "is-error" : ""}>${i + 1}</span>`)}</pre>
      <textarea id="rule-yaml" ref=${area} data-testid="rule-yaml" class="rule-text" value=${text} rows=${lines.length + 1}
        wrap="off" spellcheck="false" autocapitalize="off" autocomplete="off" readOnly=${!admin}
        aria-invalid=${errors.length ? "true" : undefined} aria-describedby=${`rule-hint${errors.length ? " rule-problems" : ""}`}
        onInput=${(e) => { setText(e.currentTarget.value); onCaret(e); }} onKeyDown=${onKeyDown} onKeyUp=${onCaret} onClick=${onCaret} />
      <div class="rule-notes" aria-hidden="true">
        ${lines.map((_, i) => {
          const here = byLine.get(i + 1);
          return html`<div class="rule-note-row">${here && html`<span class="rule-note" data-testid="rule-error" data-line=${i + 1}
            onClick=${() => goTo(i + 1)}>${here.map((e) => e.message).join("; ")}</span>`}</div>`;
        })}
      </div>
    </div>
    <p class="rule-line-note" aria-live="polite" data-testid="rule-line-error">${lineNotes ? `Line ${caret}: ${lineNotes.map((e) => `${e.field}: ${e.message}`).join("; ")}` : ""}</p>
    <${Problems} errors=${errors} goTo=${goTo} />
    ${conflict &&
    html`<div class="banner banner-warn rule-conflict" role="alert" data-testid="rule-conflict">
      <p><strong>Someone else saved this rule after you opened it.</strong> Your text is kept here, not saved. Load the current version to compare, then save again to replace it with your text.</p>
      <button type="button" class="btn" data-testid="rule-reload" onClick=${reload}>Load the current version</button>
    </div>`}
    ${admin &&
    html`<div class="rule-actions">
      <label class="inline">Test against the last
        <input type="number" min="1" max="5000" value=${last} class="rule-last" data-testid="rule-test-last" onChange=${(e) => setLast(e.currentTarget.value)} /> events</label>
      <button type="button" class="btn" data-testid="rule-test" disabled=${!!busy} onClick=${test}>Test before saving</button>
      <button type="button" class="btn btn-primary" data-testid="rule-save" disabled=${!!busy} onClick=${submit}>Save</button>
    </div>`}
    <p role="status" class="rules-status" data-testid="rule-status">${status}</p>
    ${current &&
    html`<section class="rule-current" data-testid="rule-current" aria-label="The current version">
      <h3>The current version</h3>
      <pre class="json">${current.yaml}</pre>
      <button type="button" class="btn btn-small" data-testid="rule-use-current" onClick=${() => { setText(current.yaml); setCurrent(null); setErrors([]); }}>Replace my text with it</button>
    </section>`}
    ${result && html`<${TestResult} result=${result} />`}
  `;
}

function TestResult({ result }) {
  return html`<section class="rule-result" data-testid="rule-test-result" aria-label="Test result">
    <h3>Test result</h3>
    <p data-testid="rule-test-summary">${fmtNumber(result.matched)} of the last ${fmtNumber(result.evaluated)} events would match${result.truncated ? ` (the first ${result.matches.length} are listed)` : ""}.</p>
    ${result.note && html`<p class="small muted">${result.note}</p>`}
    ${result.matches.length > 0 &&
    html`<ul class="rule-matches">
      ${result.matches.map((m) => {
        const t = Date.parse(m.timestamp);
        const around = Number.isNaN(t) ? {} : { start: isoSeconds(t - 60000), end: isoSeconds(t + 60000) };
        const href = pageHref("events", { ...around, event: m.id });
        return html`<li key=${m.id} data-testid="rule-test-match" data-event-id=${m.id}>
          <a href=${href}>${fmtTime(m.timestamp)}</a> ${m.operation} <span class="muted">${m.actor || ""}</span>
        </li>`;
      })}
    </ul>`}
  </section>`;
}

export function Page() {
  const q = queryParams();
  const id = q.get("rule");
  const n = Number(q.get("last"));
  const last = Number.isInteger(n) && n >= 1 && n <= 5000 ? n : 500;
  return html`<main id="main" class="page rules-page">
    <h1>Rules</h1>
    ${id ? html`<${RuleEditor} key=${id} id=${id} last=${last} />` : html`<${RuleList} />`}
  </main>`;
}
