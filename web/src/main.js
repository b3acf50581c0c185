// The console's entry point: runtime config, sign-in, then the shell and the event explorer.
import { html, render } from "htm/preact";
import { configureApi } from "./api.js";
import { initAuth, getToken, preloadMsal, sessionExpired } from "./auth.js";
import { showError } from "./errors.js";
import { App } from "./components/shell.js";
import { config, bootState } from "./state.js";
import { startData, loadFacets, loadVersion } from "./data.js";

// No failure may leave a blank page or an unhandled rejection: both end in the error banner.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  showError(event.reason, "Unexpected error");
});
window.addEventListener("error", (event) => {
  if (event.error) showError(event.error, "Unexpected error");
});

async function loadConfig() {
  const response = await fetch("/config.json", { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  return response.json();
}

async function boot() {
  const root = document.getElementById("app");
  root.classList.remove("boot");
  root.textContent = "";
  render(html`<${App} />`, root);
  try {
    preloadMsal().catch(() => {}); // reported by initAuth if it fails
    const cfg = await loadConfig();
    config.value = cfg;
    configureApi({
      base: cfg.apiBaseUrl || "/api",
      getToken,
      onSessionExpired: () => {
        sessionExpired.value = true;
      },
    });
    const account = await initAuth(cfg);
    if (!account) {
      bootState.value = "signed-out";
      return;
    }
    // The first token tells the roles; the searches start in parallel right after.
    await getToken();
    bootState.value = "ready";
    startData();
    loadFacets();
    loadVersion(cfg.version);
  } catch (error) {
    bootState.value = "failed";
    showError(error, "The console could not start");
  }
}

boot();
