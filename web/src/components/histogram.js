// Events per time bucket for the current filter (GET /api/events/histogram). Dragging across the bars
// zooms the time range to them; a click zooms into one bucket. Keyboard: focus the chart, arrows pick a
// bucket, Shift+arrows widen the pick, Enter zooms, Escape cancels.
import { html } from "htm/preact";
import { useRef, useState } from "preact/hooks";
import { histogram, histogramState, results } from "../data.js";
import { patchFilters, filters, presetOf } from "../state.js";
import { fmtNumber, fmtTime, fmtSpan, isoSeconds } from "../util.js";

const W = 600;
const H = 84;
const TOP = 4;

function bucketEnd(h, i) {
  return i + 1 < h.buckets.length ? h.buckets[i + 1].start : h.to;
}

function zoomTo(h, a, b) {
  const lo = Math.max(0, Math.min(a, b));
  const hi = Math.min(h.buckets.length - 1, Math.max(a, b));
  if (lo === 0 && hi === h.buckets.length - 1) return;
  patchFilters({ start: h.buckets[lo].start, end: bucketEnd(h, hi) });
}

function zoomOut(h) {
  const from = Date.parse(h.from);
  const to = Date.parse(h.to);
  const span = to - from;
  const now = Date.now();
  const end = Math.min(now, to + span);
  const start = Math.max(end - span * 3, end - 800 * 86400000 + 60000);
  patchFilters({ start: isoSeconds(start), end: end >= now - 60000 ? "" : isoSeconds(end) });
}

export function Histogram() {
  const h = histogram.value;
  const state = histogramState.value;
  const r = results.value;
  const svgRef = useRef(null);
  const drag = useRef(null);
  const [sel, setSel] = useState(null); // [a, b] bucket indexes being picked
  const [cursor, setCursor] = useState(null);
  const [announce, setAnnounce] = useState("");

  if (!h || !Array.isArray(h.buckets) || !h.buckets.length) {
    return html`<div class="histogram histogram-empty" data-testid="histogram-area">
      <p class="muted">${state === "loading" ? "Counting events over time…" : state === "error" ? "The histogram is unavailable." : ""}</p>
    </div>`;
  }
  const n = h.buckets.length;
  const max = Math.max(1, ...h.buckets.map((b) => b.count));
  const bw = W / n;
  const stale = h.key !== r.key;

  const indexAt = (clientX) => {
    const rect = svgRef.current.getBoundingClientRect();
    const frac = (clientX - rect.left) / Math.max(1, rect.width);
    return Math.max(0, Math.min(n - 1, Math.floor(frac * n)));
  };
  const describe = (a, b) => {
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    const count = h.buckets.slice(lo, hi + 1).reduce((s, x) => s + x.count, 0);
    return `${fmtTime(h.buckets[lo].start)} to ${fmtTime(bucketEnd(h, hi))} UTC: ${fmtNumber(count)} events`;
  };

  const onPointerDown = (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    svgRef.current.setPointerCapture(e.pointerId);
    const i = indexAt(e.clientX);
    drag.current = { a: i, b: i };
    setSel([i, i]);
  };
  const onPointerMove = (e) => {
    if (!drag.current) return;
    const i = indexAt(e.clientX);
    if (i !== drag.current.b) {
      drag.current = { ...drag.current, b: i };
      setSel([drag.current.a, i]);
    }
  };
  const onPointerUp = (e) => {
    if (!drag.current) return;
    const { a, b } = drag.current;
    drag.current = null;
    if (svgRef.current.hasPointerCapture(e.pointerId)) svgRef.current.releasePointerCapture(e.pointerId);
    setSel(null);
    zoomTo(h, a, b);
  };
  const onPointerCancel = () => {
    drag.current = null;
    setSel(null);
  };
  const onKeyDown = (e) => {
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : e.key === "Home" ? -n : e.key === "End" ? n : 0;
    if (step) {
      e.preventDefault();
      const c = cursor === null ? (step > 0 ? 0 : n - 1) : Math.max(0, Math.min(n - 1, cursor + step));
      const anchor = e.shiftKey && sel ? sel[0] : e.shiftKey && cursor !== null ? cursor : c;
      setCursor(c);
      setSel([anchor, c]);
      setAnnounce(describe(anchor, c));
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      if (sel) {
        zoomTo(h, sel[0], sel[1]);
        setSel(null);
        setCursor(null);
      }
    } else if (e.key === "Escape" && sel) {
      e.stopPropagation();
      setSel(null);
      setCursor(null);
      setAnnounce("Selection cancelled");
    }
  };
  const onBlur = () => {
    if (!drag.current) {
      setSel(null);
      setCursor(null);
    }
  };

  const lo = sel ? Math.min(sel[0], sel[1]) : -1;
  const hi = sel ? Math.max(sel[0], sel[1]) : -1;
  const f = filters.value;
  const zoomed = presetOf(f) === "custom";
  return html`
    <div class=${`histogram${stale ? " is-stale" : ""}`} data-testid="histogram-area">
      <div class="histogram-head">
        <h2 class="histogram-title" id="histogram-title">Events over time</h2>
        <span class="muted histogram-meta" data-testid="histogram-range">
          ${fmtTime(h.from)} – ${fmtTime(h.to)} UTC · ${fmtSpan(h.bucket_seconds)} per bar
        </span>
        <span class="histogram-actions">
          <button type="button" class="btn btn-quiet btn-small" data-testid="histogram-zoom-out" onClick=${() => zoomOut(h)}>Zoom out</button>
          ${zoomed &&
          html`<button type="button" class="btn btn-quiet btn-small" data-testid="histogram-reset" onClick=${() => patchFilters({ start: "", end: "" })}>
            Last 30 days
          </button>`}
        </span>
      </div>
      <svg
        ref=${svgRef}
        class="histogram-svg"
        data-testid="histogram"
        viewBox=${`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="group"
        tabindex="0"
        aria-labelledby="histogram-title"
        aria-describedby="histogram-help"
        onPointerDown=${onPointerDown}
        onPointerMove=${onPointerMove}
        onPointerUp=${onPointerUp}
        onPointerCancel=${onPointerCancel}
        onKeyDown=${onKeyDown}
        onBlur=${onBlur}
      >
        ${sel && html`<rect class="histogram-sel" data-testid="histogram-selection" x=${lo * bw} y="0" width=${(hi - lo + 1) * bw} height=${H} />`}
        ${h.buckets.map((b, i) => {
          const height = b.count ? Math.max(2, ((H - TOP) * b.count) / max) : 0;
          return html`<rect
            key=${b.start}
            class=${`bar${i >= lo && i <= hi ? " is-picked" : ""}${i === cursor ? " is-cursor" : ""}`}
            data-testid="histogram-bar"
            data-start=${b.start}
            data-count=${b.count}
            x=${i * bw + bw * 0.08}
            y=${H - height}
            width=${bw * 0.84}
            height=${height}
          ><title>${fmtTime(b.start)} UTC: ${fmtNumber(b.count)} events</title></rect>`;
        })}
      </svg>
      <p id="histogram-help" class="visually-hidden">
        Drag across the bars to zoom into that time. With the keyboard: arrow keys pick a bar, Shift and arrows
        widen the pick, Enter zooms, Escape cancels.
      </p>
      <p class="visually-hidden" role="status" aria-live="polite">${announce}</p>
    </div>
  `;
}
