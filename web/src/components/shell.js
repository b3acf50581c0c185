// The shell: header (user, roles, version, sign-out), the error banner, the sign-in screen and the page.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { user, signIn, signOut, sessionExpired, ROLE } from "../auth.js";
import { errors, clearErrors, showError } from "../errors.js";
import { version } from "../data.js";
import { config, bootState } from "../state.js";
import { PAGES, currentPage, loadPage, loadedPage } from "../pages.js";
import { Explorer } from "./explorer.js";

const ROLE_NAMES = { [ROLE.reader]: "Reader", [ROLE.analyst]: "Analyst", [ROLE.admin]: "Admin", [ROLE.privacy]: "Privacy" };

function onSignIn() {
  signIn().catch((error) => showError(error, "Sign-in failed"));
}

function onSignOut() {
  signOut().catch((error) => showError(error, "Sign-out failed"));
}

function UserMenu() {
  const u = user.value;
  if (!u) return null;
  const roles = (u.tokenRoles || []).map((r) => ROLE_NAMES[r] || r);
  return html`
    <details class="user-menu" data-testid="user-menu">
      <summary>
        <span class="user-name">${u.name}</span>
        <span class="user-roles-short muted">${roles.length ? roles.join(", ") : "no roles"}</span>
        <span class="visually-hidden">: account menu</span>
      </summary>
      <div class="user-pop">
        <p class="user-id">${u.username}</p>
        <p>
          Roles:
          <span data-testid="user-roles">${roles.length ? roles.join(", ") : "none"}</span>
        </p>
        <button type="button" class="btn" data-testid="sign-out" onClick=${onSignOut}>Sign out</button>
      </div>
    </details>
  `;
}

function Header() {
  const v = version.value;
  return html`
    <header class="topbar">
      <a class="brand" href="/">
        <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
          <path d="M6 23h4V15H6zm7 0h4V8h-4zm7 0h4v-5h-4z" />
        </svg>
        AOC console
      </a>
      <nav aria-label="Main" class="mainnav">
        ${PAGES.filter((p) => !p.hidden).map(
          (p) => html`<a key=${p.id} href=${p.paths[0]} data-testid=${`nav-${p.id}`}
            aria-current=${currentPage.value && currentPage.value.id === p.id ? "page" : undefined}>${p.label}</a>`,
        )}
      </nav>
      <span class="version" data-testid="version" title=${v && v.commit ? `commit ${v.commit}` : undefined}>
        ${v && v.version ? `v${String(v.version).replace(/^v/, "")}` : ""}
      </span>
      <${UserMenu} />
    </header>
  `;
}

export function ErrorBanner() {
  const list = errors.value;
  const expired = sessionExpired.value && bootState.value === "ready";
  return html`
    <div class="banner-region" role="alert" aria-live="assertive">
      ${expired &&
      html`<div class="banner banner-warn" data-testid="session-expired">
        <p><strong>Your session has expired.</strong> Sign in again to continue; the filters stay in the address.</p>
        <button type="button" class="btn" onClick=${onSignIn}>Sign in again</button>
      </div>`}
      ${list.length > 0 &&
      html`<div class="banner" data-testid="error-banner">
        <ul class="banner-list">
          ${list.map(
            (e) => html`<li key=${e.id} data-testid="error-message">
              <strong data-testid="error-title">${e.title}</strong>
              ${e.detail ? html` <span data-testid="error-detail">${e.detail}</span>` : ""}
            </li>`,
          )}
        </ul>
        <button type="button" class="btn btn-quiet" data-testid="error-dismiss" onClick=${clearErrors}>Dismiss</button>
      </div>`}
    </div>
  `;
}

function SignIn() {
  const ref = useRef(null);
  useEffect(() => {
    if (ref.current) ref.current.focus();
  }, []);
  return html`
    <main id="main" class="signin">
      <h1>AOC console</h1>
      <p>Audit events from Entra ID, Intune, Exchange, SharePoint and Teams in one place.</p>
      <button type="button" class="btn btn-primary" data-testid="sign-in" ref=${ref} onClick=${onSignIn}>Sign in</button>
    </main>
  `;
}

function NotFound() {
  return html`
    <main id="main" class="signin">
      <h1>Page not found</h1>
      <p><a href="/">Go to the events</a></p>
    </main>
  `;
}

/** A page other than the explorer: its chunk is imported on first visit (main.js starts that at boot for
 * the page the address names), then rendered at once. */
function LazyPage({ page }) {
  const [, setTick] = useState(0);
  const module = loadedPage(page.id);
  useEffect(() => {
    // Rendered without the module: import it, or take the import that finished since, and re-render.
    if (module) return;
    let live = true;
    loadPage(page)
      .then(() => {
        if (live) setTick((n) => n + 1);
      })
      .catch((error) => showError(error, `The ${page.label} page could not load`));
    return () => {
      live = false;
    };
  }, [page.id, module]);
  if (!module) return html`<main id="main" class="boot-msg" aria-busy="true">Loading ${page.label}…</main>`;
  const Page = module.Page;
  return html`<${Page} />`;
}

export function App() {
  const state = bootState.value;
  let page;
  if (state === "loading") page = html`<main id="main" class="boot-msg" aria-busy="true">Loading the console…</main>`;
  else if (state === "signed-out") page = html`<${SignIn} />`;
  else if (state === "failed")
    page = html`<main id="main" class="signin">
      <h1>The console could not start</h1>
      <p>The error is shown above. <a href=${window.location.href}>Try again</a>.</p>
    </main>`;
  else {
    const current = currentPage.value;
    if (!current) page = html`<${NotFound} />`;
    else if (current.id === "events") page = html`<${Explorer} />`;
    else page = html`<${LazyPage} key=${current.id} page=${current} />`;
  }
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <${Header} />
    <${ErrorBanner} />
    ${page}
  `;
}
