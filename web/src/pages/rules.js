// Rules page: being built (issue 17). Replaced by its owner.
import { html } from "htm/preact";

export function Page() {
  return html`<main id="main" class="page"><h1>Rules</h1></main>`;
}
