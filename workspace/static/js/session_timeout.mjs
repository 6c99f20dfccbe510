// The idle sign-out warning. The server signs a session out after SESSION_IDLE_MINUTES
// without a request (workspace/sessions.py); this shows a warning a few minutes before,
// with "Stay signed in". Typing or clicking on the page counts as activity: at most once
// a minute it tells the server so, as a page with a live connection may otherwise make
// no requests while someone works in it. When the time is up the page reloads, and the
// server shows the sign-in page with the reason.

const banner = document.getElementById("session-warning");

if (banner) {
  const idleMs = Number(banner.dataset.idleMinutes) * 60_000;
  const warnMs = Number(banner.dataset.warningMinutes) * 60_000;
  const form = banner.querySelector("form");
  const token = form?.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
  let lastActivity = Date.now(); // the page load was a request
  let lastTold = Date.now();
  let warned = false;

  const keepAlive = async () => {
    lastTold = Date.now();
    try {
      const response = await fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": token, Accept: "application/json" },
      });
      if (response.ok) {
        lastActivity = lastTold;
        return true;
      }
    } catch {
      // offline: the warning stays; the server decides at the next request
    }
    return false;
  };

  const activity = () => {
    if (warned || !idleMs) return;
    if (Date.now() - lastTold > 60_000) keepAlive();
  };
  for (const name of ["keydown", "input", "click"]) {
    document.addEventListener(name, activity, { passive: true, capture: true });
  }

  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await keepAlive()) {
      warned = false;
      banner.hidden = true;
    }
  });

  if (idleMs > 0) {
    setInterval(() => {
      const idle = Date.now() - lastActivity;
      if (idle >= idleMs) {
        window.location.reload();
      } else if (idle >= idleMs - warnMs && !warned) {
        warned = true;
        banner.hidden = false;
      }
    }, 5_000);
  }
}
