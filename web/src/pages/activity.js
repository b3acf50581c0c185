// The Activity map page (/activity, issue 19): the activity datasets (GET /api/datasets), one at a time. The
// chosen dataset's TSV (GET /api/datasets/{id}, kept with its ETag and asked for again with If-None-Match,
// so an unchanged dataset is not downloaded twice), filtered by time on its time column; sign-in failures
// on a world map when it has Latitude and Longitude (points sized by count, with the same places as a
// table); the rows in a sortable table paged here; Refresh (POST /api/refresh?source=) and its outcome.
// The map libraries (d3-geo, topojson-client) load with this page's chunk only; the world (world-atlas's
// countries-110m TopoJSON) is a static file under /assets, fetched when a map is first drawn.
import { geoNaturalEarth1, geoPath } from "d3-geo";
import { html } from "htm/preact";
import { useEffect, useLayoutEffect, useMemo, useState } from "preact/hooks";
import { feature, mesh } from "topojson-client";
import worldUrl from "world-atlas/countries-110m.json";
import { api, isAbort } from "../api.js";
import { showError } from "../errors.js";
import { pageHref } from "../pages.js";
import { navigate, queryParams } from "../state.js";
import { parseTsv } from "../tsv.js";
import { fmtNumber, fmtSpan, fmtTime, fromLocalInput, toLocalInput } from "../util.js";

const RANGES = { "1h": 1, "6h": 6, "24h": 24 }; // hours; none: the whole dataset; "custom": start and end
const PAGE_SIZE = 50;
const W = 960;
const H = 500;
const COORDS = ["Latitude", "Longitude"];
const hasCoords = (d) => COORDS.every((c) => d.columns.includes(c));

/** The TSVs read so far, by dataset id: {columns, rows, etag}; a 304 keeps the one held. */
const held = new Map();

async function loadTsv(id) {
  const was = held.get(id);
  const headers = { Accept: "text/tab-separated-values, application/problem+json" };
  if (was && was.etag) headers["If-None-Match"] = was.etag;
  try {
    const r = await api(`/datasets/${encodeURIComponent(id)}`, { headers, as: "response" });
    const now = { ...parseTsv(await r.text()), etag: r.headers.get("ETag") };
    held.set(id, now);
    return now;
  } catch (e) {
    if (e.status === 304 && was) return was;
    if (e.status === 404) return { missing: true };
    throw e;
  }
}

let world = null;
/** The world's outlines projected once: the sphere, the land, the borders and the projection. */
function loadWorld() {
  world ||= fetch(worldUrl)
    .then((r) => {
      if (!r.ok) throw new Error(`${worldUrl} answered ${r.status}`);
      return r.json();
    })
    .then((t) => {
      const projection = geoNaturalEarth1().fitSize([W, H], { type: "Sphere" });
      const path = geoPath(projection);
      const countries = t.objects.countries;
      return {
        projection,
        sphere: path({ type: "Sphere" }),
        land: path(feature(t, countries)),
        borders: path(mesh(t, countries, (a, b) => a !== b)),
      };
    });
  world.catch(() => (world = null));
  return world;
}

/** The time window the address asks for: [from, to] in ms (either may be missing), or null for all rows. */
function windowOf(sp) {
  const range = sp.get("range");
  if (RANGES[range]) return [Date.now() - RANGES[range] * 3600000, null];
  if (range !== "custom") return null;
  const t = (v) => (v && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : null);
  return [t(sp.get("start")), t(sp.get("end"))];
}

/** Rows whose time column falls in the window (all of them without one). */
function within(data, timeColumn, win) {
  const i = data.columns.indexOf(timeColumn);
  if (!win || i < 0) return data.rows;
  const [from, to] = win;
  return data.rows.filter((r) => {
    const t = Date.parse(r[i]);
    return !Number.isNaN(t) && (from === null || t >= from) && (to === null || t <= to);
  });
}

/** The rows grouped by their coordinates, most failures first. */
function placesOf(columns, rows) {
  const [iLat, iLon, iCity, iCountry] = [...COORDS, "City", "Country"].map((c) => columns.indexOf(c));
  const found = new Map();
  for (const r of rows) {
    const lat = r[iLat] === "" ? NaN : Number(r[iLat]);
    const lon = r[iLon] === "" ? NaN : Number(r[iLon]);
    if (!(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) continue;
    const key = `${lat},${lon}`;
    if (!found.has(key)) found.set(key, { key, lat, lon, city: r[iCity] || "", country: r[iCountry] || "", n: 0 });
    found.get(key).n += 1;
  }
  return [...found.values()].sort((a, b) => b.n - a.n || a.key.localeCompare(b.key));
}

const placeName = (p) => [p.city, p.country].filter(Boolean).join(", ") || "Unknown place";

export function Page() {
  const sp = queryParams();
  const [list, setList] = useState(null);
  const [tick, setTick] = useState(0);
  useLayoutEffect(() => {
    const ctl = new AbortController();
    api("/datasets", { signal: ctl.signal }).then(
      (r) => setList(r.items || []),
      (e) => isAbort(e) || (setList(false), showError(e, "The datasets could not be loaded")),
    );
    return () => ctl.abort();
  }, [tick]);
  const items = list || [];
  const chosen =
    items.find((d) => d.id === sp.get("dataset")) ||
    items.find((d) => hasCoords(d) && d.metadata) ||
    items.find(hasCoords) ||
    items[0];
  const href = (patch) => pageHref("activity", { dataset: chosen && chosen.id, range: sp.get("range"), start: sp.get("start"), end: sp.get("end"), ...patch });
  return html`
    <main id="main" class="page alerts-page act-page" data-testid="activity">
      <h1>Activity map</h1>
      ${list === null && html`<p class="muted loading">Loading…</p>`}
      ${list && !items.length && html`<p class="empty" data-testid="act-no-datasets">No dataset is configured.</p>`}
      ${chosen &&
      html`<nav class="al-tabs" aria-label="Datasets">
          ${items.map(
            (d) => html`<a href=${href({ dataset: d.id })} data-testid="act-dataset" data-dataset=${d.id}
              aria-current=${d === chosen ? "page" : undefined}>${d.name}</a>`,
          )}
        </nav>
        <${Dataset} key=${chosen.id} d=${chosen} sp=${sp} href=${href} onRefreshed=${() => setTick((n) => n + 1)} />`}
    </main>
  `;
}

function Dataset({ d, sp, href, onRefreshed }) {
  const [data, setData] = useState(held.get(d.id) || null);
  const [tick, setTick] = useState(0);
  useLayoutEffect(() => {
    let live = true;
    loadTsv(d.id).then(
      (v) => live && setData(v),
      (e) => live && (setData((x) => x || { missing: true }), showError(e, `The dataset ${d.id} could not be loaded`)),
    );
    return () => (live = false);
  }, [tick]);
  const win = windowOf(sp);
  const rows = useMemo(() => (data && data.rows ? within(data, d.time_column, win) : []), [data, sp.toString()]);
  const m = d.metadata;
  return html`
    <section class="act-meta" aria-label="About this dataset">
      <p data-testid="act-meta" data-status=${m ? m.status : "never"}>
        ${d.kind} · ${m ? `refreshed ${fmtTime(m.last_refresh_at)} UTC, ${fmtNumber(m.rows)} rows, ${m.status}` : "never refreshed"}
      </p>
      <${Refresh} id=${d.id} interval=${d.refresh_interval_seconds} onDone=${() => (setTick((n) => n + 1), onRefreshed())} />
    </section>
    <${TimeFilter} sp=${sp} href=${href} />
    ${data === null && html`<p class="muted loading">Loading…</p>`}
    ${data && data.missing && html`<p class="empty" data-testid="act-no-data">Not published yet: refresh it.</p>`}
    ${data && data.rows &&
    html`${hasCoords(d)
        ? html`<${WorldMap} columns=${data.columns} rows=${rows} />`
        : html`<p class="muted" data-testid="act-no-coords">No coordinates: no map.</p>`}
      <${Table} key=${data.etag} columns=${data.columns} rows=${rows} total=${data.rows.length} timeColumn=${d.time_column} />`}
  `;
}

function Refresh({ id, interval, onDone }) {
  const [said, setSaid] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    let s;
    try {
      const r = await api("/refresh", { method: "POST", params: { source: id }, as: "response" });
      const o = r.status === 204 ? null : ((await r.json()).outcomes || [])[0];
      s = [
        r.status,
        r.status === 200
          ? `Refreshed: ${fmtNumber(o.rows)} rows, ${fmtNumber(o.rows_added)} new.`
          : r.status === 202
            ? "In progress: another refresh holds the lock."
            : `Nothing due: refreshed less than ${fmtSpan(interval)} ago.`,
      ];
      onDone();
    } catch (e) {
      if (e.status === 429) {
        const wait = Number((e.headers && e.headers.get("Retry-After")) || 0);
        s = [429, `Too many refreshes: try again in ${fmtSpan(wait || 60)}.`];
      } else {
        s = [e.status || 0, e.message];
        showError(e, "The refresh failed");
      }
    }
    setSaid(s);
    setBusy(false);
  };
  return html`<p class="inline">
    <button type="button" class="btn" data-testid="act-refresh" disabled=${busy} onClick=${run}>Refresh</button>
    <span role="status" class="small" data-testid="act-refresh-result" data-status=${said ? said[0] : ""}>${busy ? "Refreshing…" : said && said[1]}</span>
  </p>`;
}

function TimeFilter({ sp, href }) {
  const range = RANGES[sp.get("range")] || sp.get("range") === "custom" ? sp.get("range") : "all";
  const [start, setStart] = useState(toLocalInput(sp.get("start") || Date.now() - 86400000));
  const [end, setEnd] = useState(toLocalInput(sp.get("end") || Date.now()));
  const [custom, setCustom] = useState(range === "custom");
  const apply = (e) => {
    e.preventDefault();
    const s = fromLocalInput(start);
    if (s) navigate(href({ range: "custom", start: s, end: fromLocalInput(end) }));
    else showError({ title: "Choose a start time", detail: "The custom range needs a start (UTC)." });
  };
  const seg = (key, label, onClick, more) => html`<button type="button" class="seg" data-testid=${`act-time-${key}`}
    aria-pressed=${String(key === "custom" ? custom : !custom && range === key)} onClick=${onClick} ...${more}>${label}</button>`;
  const pick = (r) => () => (setCustom(false), navigate(href({ range: r, start: "", end: "" })));
  return html`<div class="timerange">
    <div class="segmented" role="group" aria-label="Rows of the last">
      ${seg("all", "All", pick(""))}
      ${Object.keys(RANGES).map((r) => seg(r, r, pick(r)))}
      ${seg("custom", "Custom", () => setCustom(true), { "aria-expanded": String(custom), "aria-controls": "act-custom" })}
    </div>
    ${custom &&
    html`<form id="act-custom" class="custom-range" onSubmit=${apply} aria-label="Custom time range">
      <label><span>From (UTC)</span>
        <input type="datetime-local" step="1" data-testid="act-time-start" value=${start} onInput=${(e) => setStart(e.currentTarget.value)} /></label>
      <label><span>To (UTC)</span>
        <input type="datetime-local" step="1" data-testid="act-time-end" value=${end} onInput=${(e) => setEnd(e.currentTarget.value)} /></label>
      <button type="submit" class="btn" data-testid="act-time-apply">Apply</button>
    </form>`}
  </div>`;
}

function WorldMap({ columns, rows }) {
  const [w, setW] = useState(null);
  useEffect(() => {
    let live = true;
    loadWorld().then((v) => live && setW(v), (e) => showError(e, "The world map could not be loaded"));
    return () => (live = false);
  }, []);
  const places = useMemo(() => placesOf(columns, rows), [rows]);
  const max = places.length ? places[0].n : 1;
  const total = places.reduce((s, p) => s + p.n, 0);
  const label = `${total} sign-in failures at ${places.length} places`;
  return html`<section class="act-map-wrap" aria-labelledby="act-map-h">
    <h2 id="act-map-h">Sign-in failures</h2>
    <svg class="act-map" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label} data-testid="act-map"
      data-points=${w ? places.length : ""} aria-busy=${w ? "false" : "true"}>
      ${w &&
      html`<path class="act-sphere" d=${w.sphere} /><path class="act-land" d=${w.land} /><path class="act-borders" d=${w.borders} />
        ${places.map((p) => {
          const [x, y] = w.projection([p.lon, p.lat]);
          return html`<circle key=${p.key} class="act-point" cx=${x.toFixed(1)} cy=${y.toFixed(1)} r=${(3 + 12 * Math.sqrt(p.n / max)).toFixed(1)}
            data-testid="map-point" data-count=${p.n} data-lat=${p.lat} data-lon=${p.lon}><title>${placeName(p)}: ${p.n}</title></circle>`;
        })}`}
    </svg>
    <details>
      <summary>As a table</summary>
      <table class="results" data-testid="act-places">
        <thead><tr>${["Place", "Latitude", "Longitude", "Failures"].map((n) => html`<th scope="col">${n}</th>`)}</tr></thead>
        <tbody>
          ${places.map((p) => html`<tr key=${p.key} data-testid="act-place" data-count=${p.n}>
            <td>${placeName(p)}</td><td>${p.lat}</td><td>${p.lon}</td><td>${p.n}</td></tr>`)}
        </tbody>
      </table>
    </details>
  </section>`;
}

/** Numbers compare as numbers, everything else as text (ISO-8601 times sort as text). */
function compare(a, b) {
  const x = a === "" ? NaN : Number(a);
  const y = b === "" ? NaN : Number(b);
  if (!Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}

function Table({ columns, rows, total, timeColumn }) {
  const [sort, setSort] = useState([Math.max(0, columns.indexOf(timeColumn)), -1]); // column index, 1 or -1
  const [pageNo, setPage] = useState(0);
  const [col, dir] = sort;
  const sorted = useMemo(() => [...rows].sort((a, b) => dir * compare(a[col], b[col])), [rows, col, dir]);
  const pages = Math.max(1, Math.ceil(sorted.length / PAGE_SIZE));
  const p = Math.min(pageNo, pages - 1);
  const shown = sorted.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  const by = (i) => () => (setSort([i, i === col ? -dir : 1]), setPage(0));
  const move = (n) => () => setPage(p + n);
  return html`<section aria-labelledby="act-rows-h">
    <h2 id="act-rows-h">Rows</h2>
    <p role="status" class="muted" data-testid="act-count" data-count=${sorted.length}>
      ${fmtNumber(sorted.length)} of ${fmtNumber(total)} rows
    </p>
    <div class="results-wrap">
      <table class="results act-table" data-testid="act-table">
        <thead><tr>
          ${columns.map(
            (c, i) => html`<th scope="col" aria-sort=${i === col ? (dir > 0 ? "ascending" : "descending") : undefined}>
              <button type="button" class="btn-link" data-testid="act-sort" data-column=${c} onClick=${by(i)}>${c}</button></th>`,
          )}
        </tr></thead>
        <tbody>
          ${shown.map((r, k) => html`<tr key=${p * PAGE_SIZE + k} data-testid="act-row">${r.map((v) => html`<td>${v}</td>`)}</tr>`)}
        </tbody>
      </table>
      ${!sorted.length && html`<p class="empty" data-testid="act-empty">No rows.</p>`}
      ${pages > 1 &&
      html`<div class="more">
        <button type="button" class="btn" data-testid="act-prev" disabled=${p === 0} onClick=${move(-1)}>Previous</button>
        <span data-testid="act-page">Page ${p + 1} of ${pages}</span>
        <button type="button" class="btn" data-testid="act-next" disabled=${p >= pages - 1} onClick=${move(1)}>Next</button>
      </div>`}
    </div>
  </section>`;
}
