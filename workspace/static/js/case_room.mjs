// The live case room client: one WebSocket per open case page (ws/cases/<id>/).
//
// The database is the record; this socket only tells the page what changed. The page
// says which event number it was built at (#notes[data-seq]); every connection starts
// with {"type":"resume","after":<number>} so nothing is missed across a dropped
// connection, and the server answers with what was missed, then "synced". The number
// is the server's, not the newest event seen: "synced" and the periodic "checkpoint"
// say up to where everything this viewer may see has been sent. A live notice moves
// only the page, so one that never arrived (while a later one did) is sent again on
// the next connection instead of being skipped.
//
// This module is loaded on the case page (it starts itself when #notes[data-case] is
// there) and imported by note_autosave.mjs for the note form. Plain ES module: no
// inline script, no eval, no inline styles (state is shown with classes and `hidden`).

/** The one close code for a refused socket and for access that has ended. */
export const CLOSE_REFUSED = 4403;

const PING_EVERY_MS = 25_000;
// A ping with no frame at all back for this long: the connection is dead.
const PONG_WAIT_MS = 20_000;
// Opened but not synced within this long: give up on this attempt and retry.
const SYNC_TIMEOUT_MS = 15_000;
// Event numbers remembered to drop a repeat (far more than one catch-up window holds).
const SEEN_EVENTS_KEPT = 2_000;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 15_000;
const WRITING_EXPIRES_MS = 8_000;

const STATE_TEXT = {
  connecting: ["Connecting…", "Updates from colleagues will appear here once connected."],
  live: ["Live", "Changes by colleagues appear here as they happen."],
  reconnecting: ["Reconnecting…", "The connection was lost. Trying again: anything missed will appear when it is back."],
  offline: ["Offline", "This device is not connected. Anything missed will appear when the connection returns."],
  refused: ["You no longer have access to this case.", "Reload the page or go back to your caseload."],
};

/** The connection state banner (#live-status): text first, colour only as a second cue.
 * A page may word a state's detail its own way with data-detail-<state>. */
export class ConnectionBanner {
  constructor(element) {
    this.element = element;
    this.title = element.querySelector("[data-live-title]");
    this.detail = element.querySelector("[data-live-detail]");
    this.element.hidden = false;
  }

  show(state) {
    const [title, standardDetail] = STATE_TEXT[state] || STATE_TEXT.connecting;
    const detail = this.element.getAttribute(`data-detail-${state}`) ?? standardDetail;
    this.element.dataset.state = state;
    if (this.title.textContent !== title) this.title.textContent = title;
    if (this.detail && this.detail.textContent !== detail) this.detail.textContent = detail;
  }
}

/**
 * One case room connection, reconnecting with exponential backoff and jitter.
 *
 * Handlers (all optional): event, synced, reload, presence, writing, error, reply
 * (draft.* replies), state, refused, disconnected.
 */
export class CaseRoom {
  constructor({ caseId, seq = 0, banner = null, on = {} }) {
    this.caseId = caseId;
    this.lastSeq = Number.isSafeInteger(seq) && seq >= 0 ? seq : 0;
    this.banner = banner;
    this.on = on;
    this.socket = null;
    this.state = "connecting";
    this.synced = false;
    this.attempt = 0;
    this.stopped = false;
    this.seenEvents = new Set(); // event numbers already handed to the page
    this.lastHeard = 0;
    this.pingSentAt = null;
    this.retryTimer = null;
    this.syncTimer = null;
    this.pingTimer = null;
  }

  get url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/ws/cases/${this.caseId}/`;
  }

  start() {
    window.addEventListener("online", () => this.online());
    window.addEventListener("offline", () => this.offline());
    window.addEventListener("pagehide", (event) => {
      // Leaving for the back/forward cache: close cleanly, reopen on return.
      if (event.persisted) this.pause();
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) this.resumeAfterPause();
    });
    this.setState("connecting");
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    this.connect();
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stopped || this.state === "refused" || this.socket) return;
    this.synced = false;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    this.lastHeard = Date.now();
    socket.addEventListener("open", () => {
      if (socket === this.socket) this.sendFrame({ type: "resume", after: this.lastSeq });
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.receive(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket === this.socket) this.closed(event.code);
    });
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => {
      if (socket === this.socket && !this.synced) socket.close();
    }, SYNC_TIMEOUT_MS);
  }

  /** Send a message once the room is synced; false (nothing sent) otherwise. */
  send(message) {
    if (!this.synced) return false;
    return this.sendFrame(message);
  }

  sendFrame(message) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  receive(data) {
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "event":
        if (Number.isSafeInteger(message.seq)) {
          // Catching up sends again what came live since the resume point: once is enough.
          if (this.seenEvents.has(message.seq)) break;
          this.seenEvents.add(message.seq);
          if (this.seenEvents.size > SEEN_EVENTS_KEPT) {
            this.seenEvents.delete(this.seenEvents.values().next().value);
          }
        }
        this.call("event", message);
        break;
      case "checkpoint":
        this.resumeFrom(message.seq);
        break;
      case "synced":
        this.resumeFrom(message.seq);
        this.synced = true;
        this.attempt = 0;
        clearTimeout(this.syncTimer);
        this.startPinging();
        this.setState("live");
        this.call("synced", message);
        break;
      case "reload":
        this.call("reload", message);
        break;
      case "presence":
        if (Array.isArray(message.people)) this.call("presence", message);
        break;
      case "writing":
        this.call("writing", message);
        break;
      case "pong":
        break;
      case "error":
        this.call("error", message);
        // A connection that cannot even resume is no use: start again, with backoff.
        if (!this.synced && this.socket) this.socket.close();
        break;
      default:
        this.call("reply", message);
    }
  }

  /** Where the next connection resumes, as the server says (it may step back, before a
   * notice that could not be sent). A connection that drops half-way through catching
   * up never said "synced", so the next one asks again from where the page really was. */
  resumeFrom(seq) {
    if (Number.isSafeInteger(seq) && seq >= 0) this.lastSeq = seq;
  }

  closed(code) {
    this.socket = null;
    this.synced = false;
    clearTimeout(this.syncTimer);
    clearInterval(this.pingTimer);
    this.call("disconnected");
    if (code === CLOSE_REFUSED) {
      this.setState("refused");
      this.call("refused");
      return;
    }
    if (this.stopped) return;
    if (navigator.onLine === false) {
      this.setState("offline"); // the "online" event reconnects
      return;
    }
    this.setState("reconnecting");
    this.scheduleRetry();
  }

  scheduleRetry() {
    if (this.retryTimer || this.stopped || this.state === "refused") return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2; // jitter: half to all of it
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  /** Ping every 25 s (it keeps presence fresh); a ping unanswered by the next turn
   * means the connection is dead though nobody closed it: start again. Measured from
   * the ping, so timers slowed in a background tab do not count as silence. */
  startPinging() {
    clearInterval(this.pingTimer);
    this.pingSentAt = null;
    this.pingTimer = setInterval(() => {
      if (!this.socket) return;
      const now = Date.now();
      if (this.pingSentAt !== null && this.lastHeard < this.pingSentAt) {
        if (now - this.pingSentAt > PONG_WAIT_MS) this.socket.close();
        return;
      }
      if (this.send({ type: "ping" })) this.pingSentAt = now;
    }, PING_EVERY_MS);
  }

  online() {
    if (this.state === "refused" || this.stopped) return;
    this.attempt = 0;
    if (!this.socket) {
      this.setState("reconnecting");
      this.connect();
    }
  }

  offline() {
    if (this.state === "refused") return;
    this.setState("offline");
    // The socket is dead or about to be: close it now and resume when back online.
    if (this.socket) this.socket.close();
  }

  pause() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket) this.socket.close();
  }

  resumeAfterPause() {
    if (this.state === "refused") return;
    this.stopped = false;
    this.attempt = 0;
    this.setState("reconnecting");
    this.connect();
  }

  setState(state) {
    if (this.state === "refused") return;
    this.state = state;
    if (this.banner) this.banner.show(state);
    this.call("state", state);
  }

  call(name, ...args) {
    const handler = this.on[name];
    if (typeof handler === "function") handler(...args);
  }
}

// --- the case page -----------------------------------------------------------------

/** A server-rendered note entry from an event's html, or null if it is not one. */
export function parseEntry(html, noteId) {
  const template = document.createElement("template");
  template.innerHTML = html;
  const entry = template.content.firstElementChild;
  if (!entry || template.content.childElementCount !== 1 || entry.id !== `note-${noteId}`) return null;
  return entry;
}

function entryKey(element) {
  return [Date.parse(element.dataset.occurred) || 0, Number(element.dataset.note) || 0];
}

/** Newest first, as the server orders them: occurred descending, then id descending. */
function isNewer(a, b) {
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1];
}

/**
 * Put `entry` in `container` at its place, replacing any entry with the same id. On one
 * page of a longer record, `bounds` holds the keys of the page's newest and oldest
 * entries as the server rendered them: an entry newer than the newest while there are
 * newer pages (or older than the oldest while there are older pages) is another page's.
 * It is not placed (and its old copy, if it moved off, is removed). An entry on the
 * boundary, the newest or oldest itself, stays. Returns whether it was placed.
 */
export function placeEntry(container, entry, { newerPages = false, olderPages = false, newest = null, oldest = null } = {}) {
  const existing = document.getElementById(entry.id);
  const key = entryKey(entry);
  const elsewhere = (newerPages && newest !== null && isNewer(key, newest))
    || (olderPages && oldest !== null && isNewer(oldest, key));
  existing?.remove();
  if (elsewhere) return false;
  for (const other of container.querySelectorAll(":scope > [data-note]")) {
    if (isNewer(key, entryKey(other))) {
      container.insertBefore(entry, other);
      return true;
    }
  }
  container.append(entry);
  return true;
}

/** The keys of a page's newest and oldest entries, as rendered (null when it has none). */
export function pageBounds(container) {
  const entries = container.querySelectorAll(":scope > [data-note]");
  return {
    newest: entries.length ? entryKey(entries[0]) : null,
    oldest: entries.length ? entryKey(entries[entries.length - 1]) : null,
  };
}

/** "Who has this case open": one line per person. */
export class PresenceList {
  constructor(section, me) {
    this.section = section;
    this.list = section.querySelector("[data-presence-list]");
    this.me = me;
  }

  show(people) {
    const lines = [];
    for (const person of people) {
      if (!person || typeof person.name !== "string") continue;
      const line = document.createElement("li");
      line.dataset.user = String(person.user);
      const name = document.createElement("span");
      name.className = "app-presence__name";
      name.textContent = person.name + (person.user === this.me ? " (you)" : "");
      line.append(name);
      const about = [person.role, person.agency].filter((part) => typeof part === "string" && part);
      if (about.length) line.append(`, ${about.join(", ")}`);
      lines.push(line);
    }
    this.list.replaceChildren(...lines);
    this.section.hidden = false;
  }

  clear() {
    this.list.replaceChildren();
    this.section.hidden = true;
  }
}

/** "Sam (Probation) is writing a note…", dropped 8 s after the last refresh. */
class WritingIndicator {
  constructor(element) {
    this.element = element;
    this.writers = new Map();
  }

  update({ user, label, active }) {
    if (!Number.isSafeInteger(user)) return;
    const current = this.writers.get(user);
    if (current) clearTimeout(current.timer);
    if (!active || typeof label !== "string") {
      if (current) current.line.remove();
      this.writers.delete(user);
      return;
    }
    const line = current ? current.line : document.createElement("p");
    line.className = "govuk-body-s app-writing__line";
    line.textContent = `${label} is writing a note…`;
    if (!current) this.element.append(line);
    const timer = setTimeout(() => this.update({ user, active: false }), WRITING_EXPIRES_MS);
    this.writers.set(user, { line, timer });
  }

  /** Drop the lines of people no longer in the room (a closed tab, a dropped link). */
  keepOnly(users) {
    for (const user of [...this.writers.keys()]) {
      if (!users.has(user)) this.update({ user, active: false });
    }
  }

  clear() {
    for (const { line, timer } of this.writers.values()) {
      clearTimeout(timer);
      line.remove();
    }
    this.writers.clear();
  }
}

export function showNotice(id, message) {
  const notice = document.getElementById(id);
  if (!notice) return;
  const text = notice.querySelector("[data-notice-message]");
  if (text && message) text.textContent = message;
  notice.hidden = false;
}

function initCasePage(notes) {
  const caseId = Number(notes.dataset.case);
  if (!Number.isSafeInteger(caseId) || caseId <= 0) return;
  const filtered = notes.dataset.filtered === "true";
  const bounds = {
    newerPages: notes.dataset.newerPages === "true",
    olderPages: notes.dataset.olderPages === "true",
    ...pageBounds(notes),
  };
  const presenceSection = document.getElementById("presence");
  const presence = presenceSection
    ? new PresenceList(presenceSection, Number(presenceSection.dataset.me))
    : null;
  const writingElement = document.getElementById("writing");
  const writing = writingElement ? new WritingIndicator(writingElement) : null;
  const bannerElement = document.getElementById("live-status");
  const caseChanged = () => showNotice("live-changed");

  const room = new CaseRoom({
    caseId,
    seq: Number(notes.dataset.seq) || 0,
    banner: bannerElement ? new ConnectionBanner(bannerElement) : null,
    on: {
      event(message) {
        if (message.kind === "case.updated" || message.kind === "person.added") {
          caseChanged();
          return;
        }
        if (message.kind === "note.withdrawn") {
          // No longer shared with this viewer: take it off the page at once.
          if (Number.isSafeInteger(message.note)) {
            document.getElementById(`note-${message.note}`)?.remove();
          }
          return;
        }
        if (!Number.isSafeInteger(message.note) || typeof message.html !== "string") return;
        if (filtered) {
          // A filtered list must not gain entries the filter did not choose.
          caseChanged();
          return;
        }
        const entry = parseEntry(message.html, message.note);
        if (!entry) return;
        if (!placeEntry(notes, entry, bounds)) {
          // It belongs on another page of the record: the pages have shifted.
          caseChanged();
          return;
        }
        document.getElementById("notes-empty")?.remove();
      },
      reload(message) {
        showNotice("live-reload", typeof message.message === "string" ? message.message : "");
      },
      presence(message) {
        presence?.show(message.people);
        writing?.keepOnly(new Set(message.people.map((person) => person?.user)));
      },
      writing(message) {
        writing?.update(message);
      },
      error(message) {
        if (typeof message.message === "string") showNotice("live-error", message.message);
      },
      synced() {
        document.getElementById("live-error")?.setAttribute("hidden", "");
      },
      disconnected() {
        writing?.clear();
      },
      refused() {
        // Access has ended: take the case's notes off the screen too.
        notes.replaceChildren();
        presence?.clear();
        writing?.clear();
      },
    },
  });
  window.caseRoom = room;
  room.start();
}

const casePageNotes = document.querySelector("#notes[data-case]");
if (casePageNotes) initCasePage(casePageNotes);
