// Sign-in with @azure/msal-browser: authorization code flow with PKCE, tokens cached in sessionStorage.
// MSAL is imported dynamically so the bundler can keep it in its own chunk (outside the size budget).
import { signal } from "@preact/signals";
import { jwtClaims } from "./util.js";

export const ROLE = {
  reader: "AOC.Reader",
  analyst: "AOC.Analyst",
  admin: "AOC.Admin",
  privacy: "AOC.Privacy",
};
const IMPLIED = {
  [ROLE.admin]: [ROLE.analyst, ROLE.reader],
  [ROLE.analyst]: [ROLE.reader],
};
const INTERACTIVE_CODES = new Set([
  "interaction_required",
  "login_required",
  "consent_required",
  "no_account_error",
  "no_tokens_found",
  "monitor_window_timeout",
  "timed_out",
  "refresh_token_expired",
  "bad_token",
]);
const REDIRECT_GUARD_KEY = "aoc.console.redirects";

/** The signed-in user: {name, username, roles: Set, tokenRoles: string[]} or null. */
export const user = signal(null);
/** True when the session could not be renewed silently and the user must sign in again. */
export const sessionExpired = signal(false);

let msal = null;
let msalModule = null;
let msalLoading = null;

/** Starts fetching MSAL early (in parallel with /config.json). */
export function preloadMsal() {
  if (!msalLoading) msalLoading = import("@azure/msal-browser");
  return msalLoading;
}
let scopes = [];
let lastToken = null;
const RENEW_BEFORE_SECONDS = 300;
// The last access token, kept in this tab's sessionStorage (where MSAL keeps its own copy) so that a
// reload can call the API before MSAL's chunk has loaded: see resumeSession.
const SESSION_KEY = "aoc.console.session";
let msalStarting = null;

function remember(token, config) {
  lastToken = token;
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token, clientId: config.clientId, authority: config.authority }));
  } catch {
    // Storage full or blocked: the next reload waits for MSAL instead.
  }
}

export function forgetSession() {
  forget();
}

function forget() {
  lastToken = null;
  sessionStorage.removeItem(SESSION_KEY);
}

let currentConfig = {};

/**
 * On a reload, the token this tab used last, when it was issued for this console and has more than
 * RENEW_BEFORE_SECONDS to live: the user and getToken() are set from it at once, so the first API calls
 * need not wait for MSAL. Returns whether it did; initAuth still runs, for renewal and sign-out.
 */
export function resumeSession(config) {
  currentConfig = config;
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  } catch {
    saved = null;
  }
  if (!saved || typeof saved.token !== "string") return false;
  if (saved.clientId !== config.clientId || saved.authority !== config.authority) return false;
  if (secondsLeft(saved.token) <= RENEW_BEFORE_SECONDS) return false;
  lastToken = saved.token;
  setUser(null, saved.token);
  return true;
}

/** Seconds until a JWT's `exp` (0 when it has none or cannot be read). */
function secondsLeft(token) {
  const exp = Number(jwtClaims(token).exp);
  return Number.isFinite(exp) ? exp - Date.now() / 1000 : 0;
}

/** The roles a token grants, with the implied ones (Admin -> Analyst -> Reader). */
export function effectiveRoles(roles) {
  const out = new Set();
  for (const r of roles || []) {
    if (!Object.values(ROLE).includes(r)) continue;
    out.add(r);
    for (const implied of IMPLIED[r] || []) out.add(implied);
  }
  return out;
}

export const hasRole = (role) => Boolean(user.value && user.value.roles.has(role));

function setUser(account, accessToken) {
  const claims = accessToken ? jwtClaims(accessToken) : {};
  const idClaims = (account && account.idTokenClaims) || {};
  const tokenRoles = Array.isArray(claims.roles) ? claims.roles : Array.isArray(idClaims.roles) ? idClaims.roles : [];
  user.value = {
    name: (account && account.name) || claims.name || (account && account.username) || "Signed in",
    username: (account && account.username) || claims.preferred_username || claims.upn || "",
    tokenRoles,
    roles: effectiveRoles(tokenRoles),
  };
}

/**
 * Builds MSAL from the runtime config, completes a redirect sign-in if one is returning, and resolves
 * with the signed-in account (or null).
 */
export function initAuth(config) {
  if (!msalStarting) msalStarting = startMsal(config);
  return msalStarting;
}

async function startMsal(config) {
  currentConfig = config;
  for (const key of ["clientId", "authority"]) {
    if (!config[key]) throw new Error(`config.json lacks "${key}": the console cannot sign you in.`);
  }
  msalModule = await preloadMsal();
  scopes = Array.isArray(config.scopes) ? config.scopes : [];
  const origin = window.location.origin;
  msal = new msalModule.PublicClientApplication({
    auth: {
      clientId: config.clientId,
      authority: config.authority,
      knownAuthorities: config.knownAuthorities || [],
      // Given locally for the tenant simulator (devtools/host/static_site.py): no metadata fetch.
      authorityMetadata: config.authorityMetadata ? JSON.stringify(config.authorityMetadata) : undefined,
      redirectUri: config.redirectUri || `${origin}/redirect.html`,
      postLogoutRedirectUri: `${origin}/`,
    },
    cache: { cacheLocation: "sessionStorage" },
  });
  await msal.initialize();
  const result = await msal.handleRedirectPromise();
  const account = (result && result.account) || msal.getActiveAccount() || msal.getAllAccounts()[0] || null;
  if (!account) return null;
  msal.setActiveAccount(account);
  if (result && result.accessToken) {
    sessionStorage.removeItem(REDIRECT_GUARD_KEY);
    remember(result.accessToken, config);
    setUser(account, result.accessToken);
  } else {
    setUser(account, lastToken);
  }
  return account;
}

export async function signIn() {
  sessionStorage.removeItem(REDIRECT_GUARD_KEY);
  await msal.loginRedirect({ scopes });
  return new Promise(() => {}); // the page navigates away
}

export async function signOut() {
  forget();
  if (msalStarting) await msalStarting;
  const account = msal.getActiveAccount();
  try {
    await msal.logoutRedirect({ account, postLogoutRedirectUri: `${window.location.origin}/` });
  } catch {
    // An authority without an end-session endpoint: forget the local session instead.
    await msal.clearCache({ account }).catch(() => {});
    user.value = null;
    window.location.assign("/");
  }
}

function needsInteraction(error) {
  if (!error) return false;
  if (msalModule && error instanceof msalModule.InteractionRequiredAuthError) return true;
  return INTERACTIVE_CODES.has(error.errorCode) || INTERACTIVE_CODES.has(error.subError);
}

/** Interactive renewal, at most twice a minute so a broken authority cannot loop the page. */
async function renewInteractively() {
  const now = Date.now();
  const recent = (JSON.parse(sessionStorage.getItem(REDIRECT_GUARD_KEY) || "[]") || []).filter((t) => now - t < 60000);
  if (recent.length >= 2) {
    sessionExpired.value = true;
    throw new Error("The session could not be renewed. Sign in again.");
  }
  sessionStorage.setItem(REDIRECT_GUARD_KEY, JSON.stringify([...recent, now]));
  await msal.acquireTokenRedirect({ scopes, account: msal.getActiveAccount() || undefined });
  return new Promise(() => {}); // the page navigates away
}

/** An access token for the API: from the cache, renewed silently, or by redirecting to sign in. */
/** The last token while it has more than RENEW_BEFORE_SECONDS to live, else null (synchronous). */
export function peekToken() {
  return lastToken && secondsLeft(lastToken) > RENEW_BEFORE_SECONDS ? lastToken : null;
}

export async function getToken(forceRefresh = false) {
  // The token MSAL gave last, while it has more than RENEW_BEFORE_SECONDS to live: what MSAL's cache
  // lookup would return, without a lookup per API call.
  if (!forceRefresh && peekToken()) return lastToken;
  if (msalStarting) await msalStarting;
  if (!msal) return null;
  const account = msal.getActiveAccount();
  if (!account) {
    sessionExpired.value = true;
    throw new Error("You are not signed in.");
  }
  try {
    const result = await msal.acquireTokenSilent({ scopes, account, forceRefresh });
    if (result.accessToken !== lastToken) {
      remember(result.accessToken, currentConfig);
      setUser(result.account || account, result.accessToken);
    }
    return result.accessToken;
  } catch (error) {
    if (needsInteraction(error)) return renewInteractively();
    throw error;
  }
}
