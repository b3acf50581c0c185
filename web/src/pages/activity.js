// The Activity map page (/activity, issue 19): the activity datasets (GET /api/datasets), one at a time. The
// chosen dataset's TSV (GET /api/datasets/{id}, kept with its ETag and asked for again with If-None-Match,
// so an unchanged dataset is not downloaded twice), filtered by time on its time column; its rows on a
// world map when it has Latitude and Longitude (sign-in failures; threat indicators placed by their IP
// address): one point per place sized by its count, the same places as a table; the rows in a sortable
// table shown a page at a time; Refresh (POST /api/refresh?source=) and its outcome.
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
  world ||= fetch(new URL(worldUrl, import.meta.url)) // the URL is relative to this chunk
    .then((r) => r.json()) // a failed answer is not JSON either: the error banner says so
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

/** The time window the address asks for: [from, to] in ms, both included, or null for every row. */
function windowOf(sp) {
  const range = sp.get("range");
  if (RANGES[range]) return [Date.now() - RANGES[range] * 3600000, Infinity];
  return range === "custom" ? [Date.parse(sp.get("start")) || -Infinity, Date.parse(sp.get("end")) || Infinity] : null;
}

/** Rows whose time column falls in the window (all of them without one; a time that is no time: none). */
function within(data, timeColumn, win) {
  const i = data.columns.indexOf(timeColumn);
  if (!win || i < 0) return data.rows;
  return data.rows.filter((r) => {
    const t = Date.parse(r[i]);
    return t >= win[0] && t <= win[1];
  });
}

/** The rows grouped by their coordinates, most rows first. */
function placesOf(columns, rows) {
  const [iLat, iLon, iCity, iCountry] = [...COORDS, "City", "Country"].map((c) => columns.indexOf(c));
  const found = new Map();
  for (const r of rows) {
    const lat = parseFloat(r[iLat]); // "" is NaN: no place
    const lon = parseFloat(r[iLon]);
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
  const [data, setData] = useState(null);
  const [tick, setTick] = useState(0);
  const [said, setSaid] = useState(null); // the last refresh: [HTTP status, what it did]
  const items = list || [];
  const d =
    items.find((x) => x.id === sp.get("dataset")) || items.find((x) => hasCoords(x) && x.metadata) || items.find(hasCoords) || items[0];
  const id = d && d.id;
  const failed = (what) => (e) => isAbort(e) || showError(e, `${what} could not be loaded`);
  useLayoutEffect(() => {
    const ctl = new AbortController();
    api("/datasets", { signal: ctl.signal }).then((r) => setList(r.items), failed("The datasets"));
    return () => ctl.abort();
  }, [tick]);
  useLayoutEffect(() => {
    let live = true;
    setData(held.get(id) || null);
    if (id) loadTsv(id).then((v) => live && setData(v), failed(`The dataset ${id}`));
    return () => (live = false);
  }, [id, tick]);
  const href = (patch) => pageHref("activity", { dataset: id, range: sp.get("range"), start: sp.get("start"), end: sp.get("end"), ...patch });
  const refresh = async () => {
    setSaid([0, "Refreshing…"]);
    try {
      const r = await api("/refresh", { method: "POST", params: { source: id }, as: "response" });
      const o = r.status === 204 || ((await r.json()).outcomes || [])[0];
      setSaid([
        r.status,
        r.status === 200
          ? `Refreshed: ${fmtNumber(o.rows)} rows, ${fmtNumber(o.rows_added)} new.`
          : r.status === 202
            ? "In progress: another refresh holds the lock."
            : `Nothing due: refreshed less than ${fmtSpan(d.refresh_interval_seconds)} ago.`,
      ]);
      setTick((n) => n + 1);
    } catch (e) {
      const wait = e.status === 429 && Number(e.headers.get("Retry-After"));
      setSaid([e.status, wait ? `Too many refreshes: try again in ${fmtSpan(wait)}.` : e.message]);
      if (!wait) showError(e, "The refresh failed");
    }
  };
  const m = d && d.metadata;
  const win = windowOf(sp);
  const rows = useMemo(() => (data && data.rows ? within(data, d.time_column, win) : []), [data, sp.toString()]);
  return html`
    <main id="main" class="page alerts-page act-page" data-testid="activity">
      <h1>Activity map</h1>
      ${d &&
      html`<nav class="al-tabs" aria-label="Datasets">
          ${items.map(
            (x) => html`<a href=${href({ dataset: x.id })} data-testid="act-dataset" data-dataset=${x.id}
              aria-current=${x === d ? "page" : undefined}>${x.name}</a>`,
          )}
        </nav>
        <p data-testid="act-meta" data-status=${m ? m.status : "never"}>
          ${d.kind} · ${m ? `refreshed ${fmtTime(m.last_refresh_at)} UTC, ${fmtNumber(m.rows)} rows, ${m.status}` : "never refreshed"}
        </p>
        <p class="inline">
          <button type="button" class="btn" data-testid="act-refresh" disabled=${said && !said[0]} onClick=${refresh}>Refresh</button>
          <span role="status" data-testid="act-refresh-result" data-status=${said ? said[0] : ""}>${said && said[1]}</span>
        </p>
        <${TimeFilter} sp=${sp} href=${href} />
        ${data && data.missing && html`<p class="empty" data-testid="act-no-data">Not published yet: refresh it.</p>`}
        ${data && data.rows &&
        html`${hasCoords(d) && html`<${WorldMap} columns=${data.columns} rows=${rows} />`}
          <${Table} key=${id + data.etag} columns=${data.columns} rows=${rows} timeColumn=${d.time_column} />`}`}
    </main>
  `;
}

function TimeFilter({ sp, href }) {
  const range = RANGES[sp.get("range")] || sp.get("range") === "custom" ? sp.get("range") : "all";
  const [custom, setCustom] = useState(range === "custom");
  const apply = (e) => {
    e.preventDefault();
    const f = e.currentTarget.elements;
    navigate(href({ range: "custom", start: fromLocalInput(f.start.value), end: fromLocalInput(f.end.value) }));
  };
  const seg = (key, label, onClick, more) => html`<button type="button" class="seg" data-testid=${`act-time-${key}`}
    aria-pressed=${String(key === "custom" ? custom : !custom && range === key)} onClick=${onClick} ...${more}>${label}</button>`;
  const pick = (r) => () => (setCustom(false), navigate(href({ range: r, start: "", end: "" })));
  // Custom: datetime-local inputs read as UTC; the address's range, else the last 24 hours, to start from.
  const input = (name, label, v) => html`<label><span>${label} (UTC)</span>
    <input type="datetime-local" step="1" name=${name} required=${name === "start"} data-testid=${`act-time-${name}`}
      defaultValue=${toLocalInput(sp.get(name) || v)} /></label>`;
  return html`<div class="timerange">
    <div class="segmented" role="group" aria-label="Rows of the last">
      ${seg("all", "All", pick(""))}
      ${Object.keys(RANGES).map((r) => seg(r, r, pick(r)))}
      ${seg("custom", "Custom", () => setCustom(true), { "aria-expanded": String(custom), "aria-controls": "act-custom" })}
    </div>
    ${custom &&
    html`<form id="act-custom" class="custom-range" onSubmit=${apply} aria-label="Custom time range">
      ${input("start", "From", Date.now() - 86400000)} ${input("end", "To", Date.now())}
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
  const label = `${total} rows at ${places.length} places`;
  return html`<section class="act-map-wrap" aria-labelledby="act-map-h">
    <h2 id="act-map-h">On the map</h2>
    <svg class="act-map" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label} data-testid="act-map"
      data-points=${w ? places.length : ""}>
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
        <thead><tr>${["Place", "Latitude", "Longitude", "Rows"].map((n) => html`<th scope="col">${n}</th>`)}</tr></thead>
        <tbody>
          ${places.map((p) => html`<tr key=${p.key} data-testid="act-place" data-count=${p.n}>
            <td>${placeName(p)}</td><td>${p.lat}</td><td>${p.lon}</td><td>${p.n}</td></tr>`)}
        </tbody>
      </table>
    </details>
  </section>`;
}

/** Numbers compare as numbers, everything else as text (ISO-8601 times sort as text). */
const compare = (a, b) => (a && b && a - b) || (a > b) - (a < b);

function Table({ columns, rows, timeColumn }) {
  const [sort, setSort] = useState([Math.max(0, columns.indexOf(timeColumn)), -1]); // column index, 1 or -1
  const [count, setCount] = useState(PAGE_SIZE); // rows shown: a page more on each "More"
  const [col, dir] = sort;
  const sorted = useMemo(() => [...rows].sort((a, b) => dir * compare(a[col], b[col])), [rows, col, dir]);
  return html`
    <h2>Rows</h2>
    <p role="status" class="muted" data-testid="act-count" data-count=${sorted.length}>
      ${fmtNumber(Math.min(count, sorted.length))} of ${fmtNumber(sorted.length)} rows shown
    </p>
    <div class="results-wrap">
      <table class="results act-table" data-testid="act-table">
        <thead><tr>
          ${columns.map(
            (c, i) => html`<th scope="col" aria-sort=${i === col ? (dir > 0 ? "ascending" : "descending") : undefined}>
              <button type="button" class="btn-link" data-testid="act-sort" data-column=${c}
                onClick=${() => (setSort([i, i === col ? -dir : 1]), setCount(PAGE_SIZE))}>${c}</button></th>`,
          )}
        </tr></thead>
        <tbody>
          ${sorted.slice(0, count).map((r) => html`<tr data-testid="act-row">${r.map((v) => html`<td>${v}</td>`)}</tr>`)}
        </tbody>
      </table>
      ${count < sorted.length &&
      html`<div class="more"><button type="button" class="btn" data-testid="act-more" onClick=${() => setCount(count + PAGE_SIZE)}>More</button></div>`}
    </div>
  `;
}
