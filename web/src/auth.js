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
export async function initAuth(config) {
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
    setUser(account, result.accessToken);
  } else {
    setUser(account, null);
  }
  return account;
}

export async function signIn() {
  sessionStorage.removeItem(REDIRECT_GUARD_KEY);
  await msal.loginRedirect({ scopes });
  return new Promise(() => {}); // the page navigates away
}

export async function signOut() {
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
export async function getToken(forceRefresh = false) {
  if (!msal) return null;
  const account = msal.getActiveAccount();
  if (!account) {
    sessionExpired.value = true;
    throw new Error("You are not signed in.");
  }
  try {
    const result = await msal.acquireTokenSilent({ scopes, account, forceRefresh });
    if (result.accessToken !== lastToken) {
      lastToken = result.accessToken;
      setUser(result.account || account, result.accessToken);
    }
    return result.accessToken;
  } catch (error) {
    if (needsInteraction(error)) return renewInteractively();
    throw error;
  }
}
