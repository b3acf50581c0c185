// The console's entry point: runtime config, sign-in, then the shell and the event explorer.
import { html, render } from "htm/preact";
import { configureApi } from "./api.js";
import {
  initAuth,
  getToken,
  peekToken,
  preloadMsal,
  sessionExpired,
  resumeSession,
  forgetSession,
} from "./auth.js";
import { showError } from "./errors.js";
import { App } from "./components/shell.js";
import { config, bootState } from "./state.js";
import { startData, loadVersion, viewSettled } from "./data.js";
import { currentPage, followLinksInPlace, loadPage } from "./pages.js";

// No failure may leave a blank page or an unhandled rejection: both end in the error banner.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  showError(event.reason, "Unexpected error");
});
window.addEventListener("error", (event) => {
  if (event.error) showError(event.error, "Unexpected error");
});

async function loadConfig() {
  // Preloaded by index.html (the build adds the link); served with Cache-Control: no-cache, so a
  // deploy's new file is seen on the next load.
  const response = await fetch("/config.json", { credentials: "same-origin" });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  return response.json();
}

// Start-up milestones as User Timing marks (aoc:config, aoc:signed-in, aoc:token; data.js sets
// aoc:results), which the browser's performance tools and bench/console.py read.
const mark = (name) => performance.mark(`aoc:${name}`);

function startSignedIn(cfg) {
  mark("token");
  // The requests go out before the shell re-renders for the signed-in user (the explorer's, facets
  // included, only when it is the page shown).
  startData();
  loadVersion(cfg.version);
  bootState.value = "ready";
}

async function boot() {
  followLinksInPlace();
  // A page other than the explorer: its chunk loads alongside /config.json and sign-in, not after them.
  const first = currentPage.value;
  if (first && first.load) loadPage(first).catch(() => {}); // LazyPage reports a failure when it imports it

  const root = document.getElementById("app");
  root.classList.remove("boot");
  root.textContent = "";
  render(html`<${App} />`, root);
  try {
    const cfg = await loadConfig();
    mark("config");
    config.value = cfg;
    configureApi({
      base: cfg.apiBaseUrl || "/api",
      getToken,
      peekToken,
      onSessionExpired: () => {
        sessionExpired.value = true;
      },
    });
    if (resumeSession(cfg)) {
      // A reload with a live token: the data first, MSAL (for renewal and sign-out) alongside.
      mark("signed-in");
      startSignedIn(cfg);
      await viewSettled(); // MSAL's start-up would delay rendering the first answers
      const account = await initAuth(cfg);
      if (!account) {
        forgetSession();
        bootState.value = "signed-out";
      }
      return;
    }
    preloadMsal().catch(() => {}); // reported by initAuth if it fails
    const account = await initAuth(cfg);
    mark("signed-in");
    if (!account) {
      bootState.value = "signed-out";
      return;
    }
    // The first token tells the roles; the searches start right after.
    await getToken();
    startSignedIn(cfg);
  } catch (error) {
    bootState.value = "failed";
    showError(error, "The console could not start");
  }
}

boot();
