// The error banner's messages. Every failure ends here: API problems (title and detail), sign-in
// errors, and any promise rejection or error nobody else handled.
import { signal } from "@preact/signals";

/** [{id, title, detail}] newest last; the banner shows them until dismissed. */
export const errors = signal([]);
let next = 1;

export function showError(error, context) {
  if (!error || error.name === "AbortError") return;
  const title = error.title || context || "Something went wrong";
  let detail = error.title ? error.detail : String(error.message || error);
  if (context && error.title && context !== title) detail = detail ? `${context}. ${detail}` : context;
  // One failure often fails several calls at once (results, histogram): say it once.
  const base = `${title}\n${error.title ? error.detail : detail}`;
  if (errors.value.some((e) => e.base === base)) return;
  errors.value = [...errors.value.slice(-3), { id: next++, title, detail, base, status: error.status }];
}

export function dismissError(id) {
  errors.value = errors.value.filter((e) => e.id !== id);
}

export function clearErrors() {
  errors.value = [];
}
