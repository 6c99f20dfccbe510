// The idle sign-out warning. The server signs a session out after SESSION_IDLE_MINUTES
// without a request (workspace/sessions.py); this shows a warning a few minutes before,
// with "Stay signed in". Typing or clicking on the page counts as activity, before the
// warning and after it (someone typing is there): at most once a minute it tells the
// server so, as a page with a live connection may otherwise make no requests while
// someone works in it. When the time is up the page reloads, and the server shows the
// sign-in page with the reason; but a page with text typed into it and not sent is not
// reloaded, which would throw that text away: it says so and keeps it, to be copied.

import { hasUnsentInput } from "./unsent.mjs";

const banner = document.getElementById("session-warning");

if (banner) {
  const idleMs = Number(banner.dataset.idleMinutes) * 60_000;
  const warnMs = Number(banner.dataset.warningMinutes) * 60_000;
  const form = banner.querySelector("form");
  const heading = banner.querySelector(".govuk-notification-banner__heading");
  const token = form?.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
  let lastActivity = Date.now(); // the page load was a request
  let lastTold = Date.now();
  let warned = false;
  let ended = false;
  let telling = false;

  const keepAlive = async () => {
    if (telling) return false;
    telling = true;
    lastTold = Date.now();
    try {
      const response = await fetch(form.action, {
        method: "POST", credentials: "same-origin", redirect: "manual",
        headers: { "X-CSRFToken": token, Accept: "application/json" },
      });
      // Only "No Content" is the session kept: a session already ended is answered
      // with a redirect to the sign-in page.
      if (response.status === 204) {
        lastActivity = lastTold;
        if (warned && !ended) {
          warned = false;
          banner.hidden = true;
        }
        return true;
      }
    } catch {
      // offline: the warning stays; the server decides at the next request
    } finally {
      telling = false;
    }
    return false;
  };

  const activity = () => {
    if (!idleMs || ended) return;
    if (warned || Date.now() - lastTold > 60_000) keepAlive();
  };
  for (const name of ["keydown", "input", "click"]) {
    document.addEventListener(name, activity, { passive: true, capture: true });
  }

  form?.addEventListener("submit", (event) => {
    event.preventDefault();
    keepAlive();
  });

  const timeUp = () => {
    if (!hasUnsentInput(document, banner)) {
      window.location.reload();
      return;
    }
    ended = true;
    heading.textContent = "You may have been signed out, as there has been no activity. " +
      "What you typed is still on this page and may not have been saved: copy anything you " +
      "need, then reload the page to sign in again.";
    form.hidden = true;
    banner.hidden = false;
  };

  if (idleMs > 0) {
    const timer = setInterval(() => {
      const idle = Date.now() - lastActivity;
      if (idle >= idleMs) {
        clearInterval(timer);
        timeUp();
      } else if (idle >= idleMs - warnMs && !warned) {
        warned = true;
        banner.hidden = false;
      }
    }, 5_000);
  }
}
