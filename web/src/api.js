// The API client: adds the bearer token, renews it once on a 401, and turns every failure into an
// ApiError carrying the RFC 9457 problem's title and detail.

export class ApiError extends Error {
  constructor(status, title, detail, problem = null) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = detail || "";
    this.problem = problem;
  }
}

const settings = {
  base: "/api",
  getToken: async () => null,
  peekToken: () => null,
  onSessionExpired: () => {},
};

export function configureApi(options) {
  Object.assign(settings, options);
  settings.base = String(settings.base || "/api").replace(/\/+$/, "");
}

/** Query string from an object whose values are strings, numbers or arrays of them; empty ones are left out. */
export function queryString(params) {
  const sp = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) if (v !== undefined && v !== null && v !== "") sp.append(name, String(v));
  }
  return sp.toString();
}

export function apiUrl(path, params) {
  const qs = queryString(params);
  return `${settings.base}${path}${qs ? `?${qs}` : ""}`;
}

async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  let body = null;
  try {
    body = type.includes("json") ? await response.json() : (await response.text()).slice(0, 300);
  } catch {
    body = null;
  }
  if (body && typeof body === "object") {
    const title = String(body.title || body.error || response.statusText || `HTTP ${response.status}`);
    const fields = Array.isArray(body.errors)
      ? body.errors.map((e) => (e && e.field ? `${e.field}: ${e.message}` : "")).filter(Boolean)
      : [];
    const detail = String(body.detail || body.message || body.error_description || "");
    const more = fields.filter((f) => !detail.includes(f));
    return new ApiError(response.status, title, [detail, ...more].filter(Boolean).join("; "), body);
  }
  const title = `${response.status} ${response.statusText || "Error"}`.trim();
  return new ApiError(response.status, title, typeof body === "string" && !/<html/i.test(body) ? body : "");
}

/**
 * Calls the API. Options: method, params (query), body (JSON), headers, signal, as ("json" | "text" | "response").
 * Resolves with the parsed body; rejects with an ApiError (or an AbortError when `signal` aborts); any answer
 * but 2xx is an ApiError, a 304 to a conditional GET included.
 */
export async function api(path, options = {}) {
  const { method = "GET", params, body, headers = {}, signal, as = "json" } = options;
  const url = apiUrl(path, params);
  const request = (token) => {
    const h = { Accept: "application/json, application/problem+json", ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h["Content-Type"] = "application/json";
    return fetch(url, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "same-origin",
      cache: "no-store",
    });
  };
  // With a live token at hand the request leaves now, before any re-render the caller's state change
  // schedules; otherwise after getToken (MSAL) answers.
  const send = (force) => {
    const cached = force ? null : settings.peekToken();
    return cached ? request(cached) : settings.getToken(force).then(request);
  };
  let response;
  try {
    response = await send(false);
    if (response.status === 401) {
      response = await send(true);
      if (response.status === 401) settings.onSessionExpired();
    }
  } catch (error) {
    if (error && (error.name === "AbortError" || error instanceof ApiError)) throw error;
    throw new ApiError(0, "The API could not be reached", String((error && error.message) || error));
  }
  // The error keeps the answer's headers: a 429's Retry-After, a 304's ETag.
  if (!response.ok) throw Object.assign(await problemOf(response), { headers: response.headers });
  if (as === "response") return response;
  if (as === "text") return response.text();
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, "Unexpected response", `${method} ${path} did not answer JSON`);
  }
}

export const isAbort = (error) => error && error.name === "AbortError";
