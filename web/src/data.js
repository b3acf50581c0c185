// What the explorer shows, loaded from the API whenever the filters in the URL change.
import { signal, effect } from "@preact/signals";
import { api, isAbort } from "./api.js";
import { filters, selectedId, apiFilters, isEventsPage } from "./state.js";
import { showError, clearErrors } from "./errors.js";

export const PAGE_SIZE = 50;
export const BUCKETS = 60;

/** {items, continuation, loading, loadingMore, error, hidden, key} */
export const results = signal({ items: [], continuation: null, loading: false, loadingMore: false, error: null, hidden: undefined, key: "" });
/** {from, to, bucket_seconds, buckets, total} | null; histogramState: "loading" | "ready" | "error" */
export const histogram = signal(null);
export const histogramState = signal("idle");
/** {service: [{value, count}], ...} | null */
export const facets = signal(null);
export const facetsError = signal(null);
/** The selected event in full: {id, event, loading, error}. */
export const detail = signal({ id: null, event: null, loading: false, error: null });
export const version = signal(null);

let searchAbort = null;
let histogramAbort = null;
let detailAbort = null;

function currentKey() {
  return JSON.stringify(apiFilters(filters.value));
}

async function loadFirstPage(key, params) {
  if (searchAbort) searchAbort.abort();
  searchAbort = new AbortController();
  const { signal: abortSignal } = searchAbort;
  results.value = { items: [], continuation: null, loading: true, loadingMore: false, error: null, hidden: results.peek().hidden, key };
  try {
    const page = await api("/events", { params: { ...params, page_size: PAGE_SIZE }, signal: abortSignal });
    if (abortSignal.aborted) return;
    performance.mark("aoc:results");
    results.value = {
      items: page.items || [],
      continuation: page.continuation || null,
      loading: false,
      loadingMore: false,
      error: null,
      hidden: page.hidden,
      key,
    };
  } catch (error) {
    if (isAbort(error) || abortSignal.aborted) return;
    results.value = { ...results.value, loading: false, error };
    showError(error);
  }
}

export async function loadMore() {
  const current = results.value;
  if (!current.continuation || current.loadingMore || current.loading) return;
  const { key } = current;
  const params = apiFilters(filters.value);
  results.value = { ...current, loadingMore: true };
  const abortSignal = searchAbort ? searchAbort.signal : undefined;
  try {
    const page = await api("/events", {
      params: { ...params, page_size: PAGE_SIZE, continuation: current.continuation },
      signal: abortSignal,
    });
    if (results.value.key !== key) return;
    const seen = new Set(results.value.items.map((e) => e.id));
    const fresh = (page.items || []).filter((e) => !seen.has(e.id));
    results.value = {
      ...results.value,
      items: [...results.value.items, ...fresh],
      continuation: page.continuation || null,
      loadingMore: false,
    };
  } catch (error) {
    if (isAbort(error)) return;
    if (results.value.key === key) results.value = { ...results.value, loadingMore: false };
    showError(error);
  }
}

async function loadHistogram(key, params) {
  if (histogramAbort) histogramAbort.abort();
  histogramAbort = new AbortController();
  const { signal: abortSignal } = histogramAbort;
  histogramState.value = "loading";
  try {
    const data = await api("/events/histogram", { params: { ...params, buckets: BUCKETS }, signal: abortSignal });
    if (abortSignal.aborted) return;
    histogram.value = { ...data, key };
    histogramState.value = "ready";
  } catch (error) {
    if (isAbort(error) || abortSignal.aborted) return;
    histogram.value = null;
    histogramState.value = "error";
    showError(error);
  }
}

export async function loadFacets() {
  try {
    const data = await api("/events/facets", { params: { top: 20 } });
    facets.value = data.facets || {};
    facetsError.value = null;
  } catch (error) {
    facetsError.value = error;
    showError(error, "Facets could not be loaded");
  }
}

export async function loadVersion(fallback) {
  try {
    version.value = await api("/version");
  } catch (error) {
    version.value = fallback ? { version: fallback } : null;
    if (error.status !== 404) showError(error, "The version could not be read");
  }
}

async function loadDetail(id) {
  if (detailAbort) detailAbort.abort();
  if (!id) {
    detail.value = { id: null, event: null, loading: false, error: null };
    return;
  }
  detailAbort = new AbortController();
  const { signal: abortSignal } = detailAbort;
  const listed = results.peek().items.find((e) => e.id === id) || null;
  detail.value = { id, event: listed, loading: true, error: null };
  try {
    const event = await api(`/events/${encodeURIComponent(id)}`, { signal: abortSignal });
    if (abortSignal.aborted) return;
    detail.value = { id, event, loading: false, error: null };
  } catch (error) {
    if (isAbort(error) || abortSignal.aborted) return;
    detail.value = { id, event: listed, loading: false, error };
    showError(error, "The event could not be loaded");
  }
}

/** Replace an event everywhere it is shown (after a tag change or a comment). */
export function updateEvent(event) {
  if (detail.value.id === event.id) detail.value = { ...detail.value, event };
  const items = results.value.items;
  if (items.some((e) => e.id === event.id)) {
    results.value = { ...results.value, items: items.map((e) => (e.id === event.id ? { ...e, ...event } : e)) };
  }
}

export function reload() {
  clearErrors();
  const params = apiFilters(filters.value);
  const key = JSON.stringify(params);
  loadFirstPage(key, params);
  loadHistogram(key, params);
}

/** Resolves once the first results and the histogram have loaded (or failed), or after `timeoutMs`. */
export function viewSettled(timeoutMs = 3000) {
  if (!isEventsPage.value) return Promise.resolve(); // another page: nothing of the explorer's to wait for
  return new Promise((resolve) => {
    let stop = () => {};
    const timer = setTimeout(() => {
      stop();
      resolve();
    }, timeoutMs);
    stop = effect(() => {
      const settled = !results.value.loading && results.value.key && histogramState.value !== "loading";
      if (!settled) return;
      clearTimeout(timer);
      queueMicrotask(() => stop());
      resolve();
    });
  });
}

let started = false;
/** Starts following the URL: a filter change reloads the results and the histogram. */
export function startData() {
  if (started) return;
  started = true;
  let lastKey = null;
  effect(() => {
    if (!isEventsPage.value) return;
    const key = currentKey();
    if (key === lastKey) return;
    lastKey = key;
    reload();
  });
  let facetsAsked = false; // once, when the explorer is first shown (the counts are for the whole range)
  effect(() => {
    if (!isEventsPage.value || facetsAsked) return;
    facetsAsked = true;
    loadFacets();
  });
  let lastId;
  effect(() => {
    if (!isEventsPage.value) return;
    const id = selectedId.value;
    if (id === lastId) return;
    lastId = id;
    loadDetail(id);
  });
}
