// The console's pages: path, navigation label and module. Every page but the event explorer is its own
// chunk (loaded with import() on first visit), so the explorer's first load carries none of them.
import { computed } from "@preact/signals";
import { route, navigate } from "./state.js";

/**
 * In the main navigation, in this order. `paths` are the paths a page answers; the first is its link.
 * `load` resolves to a module exporting `Page` (a Preact component rendering its own <main id="main">).
 */
export const PAGES = [
  { id: "home", label: "Home", paths: ["/home"], load: () => import("./pages/home.js") },
  { id: "events", label: "Events", paths: ["/", "/events", "/index.html"] },
  { id: "alerts", label: "Alerts", paths: ["/alerts"], load: () => import("./pages/alerts.js") },
  { id: "rules", label: "Rules", paths: ["/rules"], load: () => import("./pages/rules.js") },
  { id: "searches", label: "Saved searches", paths: ["/searches"], load: () => import("./pages/searches.js") },
  { id: "health", label: "Health", paths: ["/health"], load: () => import("./pages/health.js") },
  // Governance (issue 18): service principal findings, accepted risks, discovery.
  { id: "governance", label: "Governance", paths: ["/governance"], load: () => import("./pages/governance.js") },
  // Activity map (issue 19): the activity datasets, sign-in failures on a world map, refresh.
  { id: "activity", label: "Activity map", paths: ["/activity"], load: () => import("./pages/activity.js") },
  // Reached from an event's actor or target, not from the navigation.
  { id: "history", label: "Object history", paths: ["/history"], load: () => import("./pages/history.js"), hidden: true },
];

const modules = new Map(); // page id -> its module, once imported
const loading = new Map(); // page id -> the import under way

/** Import a page's module (once); resolves to it. */
export function loadPage(page) {
  if (!loading.has(page.id)) {
    loading.set(
      page.id,
      page.load().then((module) => {
        modules.set(page.id, module);
        return module;
      }),
    );
  }
  return loading.get(page.id);
}

/** A page's module if it has been imported already, else undefined: rendered at once, no extra frame. */
export const loadedPage = (id) => modules.get(id);

/** The page the address names, or null (not found). */
export const currentPage = computed(() => PAGES.find((p) => p.paths.includes(route.value.path)) || null);

/** The link to a page, with optional query parameters (an object; empty values are left out). */
export function pageHref(id, params = {}) {
  const page = PAGES.find((p) => p.id === id);
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined && one !== null && one !== "") sp.append(k, one);
  }
  const qs = sp.toString();
  return qs ? `${page.paths[0]}?${qs}` : page.paths[0];
}

/**
 * Same-origin links move within the console without reloading it (a plain left click on an <a href="/...">
 * the page did not handle itself; target, download, modifier keys and `data-reload` keep the browser's way).
 */
export function followLinksInPlace(root = document) {
  root.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!a || a.target || a.hasAttribute("download") || a.hasAttribute("data-reload")) return;
    const url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin || url.pathname.endsWith(".html") && url.pathname !== "/index.html") return;
    if (!PAGES.some((p) => p.paths.includes(url.pathname))) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}
