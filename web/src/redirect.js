// The MSAL v5 redirect bridge: the authority redirects here (config.redirectUri). For a redirect
// sign-in it stores the response and returns to the page that started it; for silent (iframe) and
// popup flows it hands the response to the main frame. Served without Cross-Origin-Opener-Policy.
import { broadcastResponseToMainFrame } from "@azure/msal-browser/redirect-bridge";

broadcastResponseToMainFrame().catch((error) => {
  const status = document.getElementById("redirect-status");
  if (status) {
    status.textContent = "";
    const title = document.createElement("strong");
    title.textContent = "Sign-in did not complete. ";
    const link = document.createElement("a");
    link.href = "/";
    link.textContent = "Return to the console";
    status.append(title, String(error && error.message ? error.message : error), " ", link);
  }
});
