// The live group case discussion room: one WebSocket per open discussion page
// (ws/discussions/<id>/), on the same connection machinery as the case room.
//
// The database is the record. Each section is saved as the participant types
// (debounced) with the version and the text their edit started from; the server merges
// changes to different words, or keeps the participant's text whole beside the section
// when someone changed the same words: nothing typed is lost. Text typed here is never
// replaced while it differs from what was last saved. On (re)connect the server sends
// the record as it stands ("state"), so nothing missed while away stays missed.
//
// Plain ES module: no inline script, no eval, no inline styles.

import { CaseRoom, ConnectionBanner, PresenceList, showNotice } from "./case_room.mjs";

const SAVE_AFTER_MS = 700;
const EDITING_IDLE_MS = 4_000;
const EDITING_EXPIRES_MS = 8_000;
// Other pages drop "… is editing" EDITING_EXPIRES_MS after hearing it: while typing, say
// it again this often (well within the connection's limit of messages per second).
const EDITING_EVERY_MS = 3_000;

class DiscussionRoom extends CaseRoom {
  constructor({ discussionId, ...options }) {
    super({ caseId: discussionId, ...options });
    this.discussionId = discussionId;
  }

  get url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/ws/discussions/${this.discussionId}/`;
  }
}

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

/** Server-rendered HTML (actions, kept texts) into `container`, with this page's form
 * token, and without the editing controls if this participant may not edit. */
function fillFrom(container, html, editable) {
  const template = document.createElement("template");
  template.innerHTML = html;
  for (const input of template.content.querySelectorAll("input[name=csrfmiddlewaretoken]")) {
    input.value = csrfToken();
  }
  if (!editable) {
    for (const control of template.content.querySelectorAll("[data-editor-only]")) control.remove();
  }
  container.replaceChildren(template.content);
}

/** One section of one agenda item's record: its textarea, saves and who is editing. */
class SectionEditor {
  constructor(element, room, editable) {
    this.element = element;
    this.room = room;
    this.editable = editable;
    this.id = Number(element.dataset.sectionId);
    this.kind = element.dataset.section;
    this.textarea = element.querySelector("textarea");
    this.status = element.querySelector("[data-section-status]");
    this.editingLine = element.querySelector("[data-editing]");
    this.versionInput = element.querySelector("[data-version-input]");
    this.version = Number(element.dataset.version) || 1;
    this.base = this.textarea.value; // the saved text the textarea's edits start from
    this.sent = null; // text of the save in flight
    this.unanswered = null; // text of a save whose answer was lost with the connection
    this.waiting = null; // a newer version that arrived while a save was in flight
    this.timer = null;
    this.editingTimer = null;
    this.announced = false;
    this.announcedAt = 0;
    this.editors = new Map();
    this.locked = !editable;
    if (!editable) return;
    this.textarea.addEventListener("input", () => this.typed());
    this.textarea.addEventListener("blur", () => {
      this.saveSoon(0);
      this.announce(false);
    });
  }

  get dirty() {
    return this.textarea.value !== this.base;
  }

  setVersion(version) {
    this.version = version;
    this.element.dataset.version = String(version);
    if (this.versionInput) this.versionInput.value = String(version);
  }

  say(text) {
    if (this.status && this.status.textContent !== text) this.status.textContent = text;
  }

  typed() {
    if (this.locked) return;
    this.say("Not saved yet");
    this.announce(true);
    this.saveSoon(SAVE_AFTER_MS);
  }

  announce(active) {
    clearTimeout(this.editingTimer);
    if (active) this.editingTimer = setTimeout(() => this.announce(false), EDITING_IDLE_MS);
    const now = Date.now();
    const again = active && now - this.announcedAt >= EDITING_EVERY_MS;
    if (active === this.announced && !again) return;
    if (this.room.send({ type: "editing", section: this.id, active })) {
      this.announced = active;
      this.announcedAt = now;
    }
  }

  saveSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), delay);
  }

  save() {
    if (this.locked || this.sent !== null || !this.dirty) return;
    const text = this.textarea.value;
    const sent = this.room.send({
      type: "section.save", section: this.id, version: this.version, base: this.base, text,
    });
    if (!sent) {
      this.say("Not saved yet: waiting for the connection. Your text stays here.");
      return;
    }
    this.sent = text;
    this.say("Saving…");
  }

  /** The answer to this page's own save. */
  saved(message) {
    const sent = this.sent;
    this.sent = null;
    if (sent === null) return;
    this.setVersion(message.version);
    if (this.textarea.value === sent) {
      // Nothing typed meanwhile: show the section as saved (merged with others' words).
      if (message.text !== sent) this.replaceText(message.text);
      this.base = message.text;
    } else if (message.outcome !== "kept") {
      // Typed on while saving: the next save starts from what was sent.
      this.base = sent;
    }
    // Typed on while a clashing save was kept (the kept text has only what was sent):
    // everything typed stays here, still based where it was, and is saved like any
    // typing (merged, or kept whole if it clashes too). Only once that save is answered
    // does the textarea show the section; if it fails, the text is still here.
    if (message.outcome === "kept") {
      this.say("Someone else changed the same words. Your text is kept below the section: add it or dismiss it.");
    } else if (message.outcome === "merged") {
      this.say(`Saved at ${message.saved_at}, with a colleague's change merged in.`);
    } else {
      this.say(`Saved at ${message.saved_at}`);
    }
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting) this.remote(waiting.version, waiting.text, waiting.byLabel);
    if (this.dirty) this.saveSoon(SAVE_AFTER_MS);
  }

  refused(message) {
    this.sent = null;
    this.waiting = null;
    this.say(`${message.message} Your text stays here.`);
  }

  /** Someone (or this page, through another path) saved a new version. */
  remote(version, text, byLabel) {
    if (!Number.isSafeInteger(version) || version <= this.version || typeof text !== "string") return;
    if (this.sent !== null) {
      // Applied once the save in flight is answered (it may be older than this).
      if (!this.waiting || version > this.waiting.version) this.waiting = { version, text, byLabel };
      return;
    }
    this.setVersion(version);
    if (text === this.unanswered) {
      // This page's own save, whose answer was lost with the connection: it is the
      // saved text the typing here goes on from, not a colleague's change.
      this.unanswered = null;
      this.base = text;
      if (!this.dirty) this.say("Saved");
      return;
    }
    if (!this.dirty) {
      this.replaceText(text);
      this.base = text;
      if (byLabel) this.say(`Updated by ${byLabel}`);
    } else {
      // Unsaved typing here stays; it is merged with this version when saved.
      this.say(`${byLabel || "A colleague"} changed this section. Your typing will be merged when saved.`);
    }
  }

  replaceText(text) {
    const area = this.textarea;
    const focused = document.activeElement === area;
    const [start, end] = [area.selectionStart, area.selectionEnd];
    area.value = text;
    if (focused) area.setSelectionRange(Math.min(start, text.length), Math.min(end, text.length));
  }

  editing({ user, label, active }) {
    if (!Number.isSafeInteger(user)) return;
    clearTimeout(this.editors.get(user)?.timer);
    if (active && typeof label === "string") {
      const timer = setTimeout(() => this.editing({ user, active: false }), EDITING_EXPIRES_MS);
      this.editors.set(user, { label, timer });
    } else {
      this.editors.delete(user);
    }
    const names = [...this.editors.values()].map((e) => e.label);
    this.editingLine.textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} editing…` : "";
  }

  lock(reason) {
    this.locked = true;
    clearTimeout(this.timer);
    this.textarea.readOnly = true;
    if (this.dirty) this.say(`${reason} Your last changes were not saved: they stay here to copy.`);
    this.element.querySelector(".app-section__save")?.remove();
  }
}

function initDiscussion(root) {
  const discussionId = Number(root.dataset.discussion);
  const me = Number(root.dataset.me);
  const items = new Map(); // item id -> {element, editable, sections: Map(kind -> editor)}
  const byId = new Map(); // section id -> editor
  const bannerElement = document.getElementById("live-status");
  const presenceSection = document.getElementById("presence");
  const presence = presenceSection ? new PresenceList(presenceSection, me) : null;
  let status = root.dataset.status;
  // A form of this page is being submitted (start, move on, sign off): the page is
  // about to be replaced, so a notice must not reload it and abort the submission.
  let leaving = false;
  window.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) leaving = true;
  });

  const room = new DiscussionRoom({
    discussionId,
    banner: bannerElement ? new ConnectionBanner(bannerElement) : null,
    on: {
      reply: (message) => handle(message),
      presence: (message) => presence?.show(message.people),
      error(message) {
        const editor = byId.get(message.section);
        if (editor) {
          editor.refused(message);
          return;
        }
        // Not about one section (too many messages, a server error): any save in
        // flight was not made; try again shortly, the text is still here.
        for (const other of byId.values()) {
          if (other.sent === null) continue;
          other.sent = null;
          other.say(`${message.message || "Not saved."} Trying again…`);
          other.saveSoon(3_000);
        }
        if (typeof message.message === "string" && message.code !== "rate_limited") {
          showNotice("live-reload", message.message);
        }
      },
      disconnected() {
        for (const editor of byId.values()) {
          // Unanswered: sent again after reconnecting if still unsaved. It may have been
          // saved all the same; the record that comes with the reconnection says so.
          if (editor.sent !== null) editor.unanswered = editor.sent;
          editor.sent = null;
          editor.waiting = null; // the record as it stands comes with the reconnection
          for (const user of [...editor.editors.keys()]) editor.editing({ user, active: false });
        }
      },
      synced() {
        document.getElementById("unsaved-notice")?.setAttribute("hidden", "");
        for (const editor of byId.values()) {
          editor.unanswered = null; // the record as it stands has been applied
          if (editor.dirty) editor.saveSoon(0);
        }
      },
      refused() {
        for (const editor of byId.values()) editor.lock("The connection to this discussion has ended.");
        presence?.clear();
      },
    },
  });

  for (const element of root.querySelectorAll(".app-discussion-item[data-item]")) {
    const editable = element.hasAttribute("data-can-edit") && status === "in_progress";
    const sections = new Map();
    for (const sectionElement of element.querySelectorAll(".app-section[data-section-id]")) {
      const editor = new SectionEditor(sectionElement, room, editable);
      sections.set(editor.kind, editor);
      byId.set(editor.id, editor);
    }
    items.set(Number(element.dataset.item), { element, editable, sections });
  }

  /** A case the meeting did not reach, taken off the agenda: its line and its record. */
  function removeItem(id) {
    for (const element of root.querySelectorAll(`[data-item="${id}"]`)) element.remove();
    for (const editor of items.get(id)?.sections.values() ?? []) byId.delete(editor.id);
    items.delete(id);
  }

  function showCurrent(current) {
    root.dataset.current = current ?? "";
    for (const line of root.querySelectorAll(".app-agenda__item[data-item]")) {
      const isCurrent = Number(line.dataset.item) === current;
      line.classList.toggle("app-agenda__item--current", isCurrent);
      const tag = line.querySelector("[data-now]");
      if (tag) tag.hidden = !isCurrent;
      const move = line.querySelector("[data-move]");
      if (move) move.hidden = isCurrent;
    }
    for (const [id, { element }] of items) {
      element.classList.toggle("app-discussion-item--current", id === current);
    }
    const now = document.getElementById("now-discussing");
    const title = items.get(current)?.element.querySelector("h2")?.textContent;
    if (now && title) now.textContent = `Now discussing: ${title}`;
  }

  function applyItem(itemId, data) {
    const item = items.get(itemId);
    if (!item || !data) return;
    for (const [kind, section] of Object.entries(data.sections || {})) {
      item.sections.get(kind)?.remote(section.version, section.text, "");
    }
    const actions = item.element.querySelector("[data-actions]");
    if (actions && typeof data.actions_html === "string") fillFrom(actions, data.actions_html, item.editable);
    for (const [kind, html] of Object.entries(data.kept_html || {})) {
      const list = item.sections.get(kind)?.element.querySelector("[data-kept-list]");
      if (list && typeof html === "string") fillFrom(list, html, item.editable);
    }
  }

  function handle(message) {
    switch (message.type) {
      case "state":
        for (const [id, data] of Object.entries(message.items || {})) applyItem(Number(id), data);
        statusChanged(message.status);
        showCurrent(message.current);
        break;
      case "section.saved":
        byId.get(message.section)?.saved(message);
        break;
      case "section.invalid":
        byId.get(message.section)?.refused(message);
        break;
      case "section":
        items.get(message.item)?.sections.get(message.section)
          ?.remote(message.version, message.text, message.by === me ? "" : message.by_label);
        break;
      case "actions": {
        const item = items.get(message.item);
        const actions = item?.element.querySelector("[data-actions]");
        if (actions && typeof message.html === "string") fillFrom(actions, message.html, item.editable);
        break;
      }
      case "kept": {
        const item = items.get(message.item);
        const list = item?.sections.get(message.section)?.element.querySelector("[data-kept-list]");
        if (list && typeof message.html === "string") fillFrom(list, message.html, item.editable);
        break;
      }
      case "editing":
        items.get(message.item)?.sections.get(message.section)?.editing(message);
        break;
      case "agenda":
        if (Number.isSafeInteger(message.removed)) removeItem(message.removed);
        showCurrent(message.current);
        break;
      case "status":
        statusChanged(message.status);
        showCurrent(message.current);
        break;
      case "hidden": {
        const item = items.get(message.item);
        if (!item) break;
        for (const editor of item.sections.values()) byId.delete(editor.id);
        const heading = item.element.querySelector("h2");
        const note = document.createElement("p");
        note.className = "govuk-body app-restricted-item";
        note.textContent = "You no longer have access to this case, so its record is not shown.";
        item.element.replaceChildren(...(heading ? [heading] : []), note);
        items.delete(message.item);
        break;
      }
      default:
        break;
    }
  }

  function statusChanged(next) {
    if (!next || next === status) return;
    const previous = status;
    status = next;
    root.dataset.status = next;
    if (previous === "scheduled" && next === "in_progress") {
      if (!leaving) window.location.reload(); // nothing can have been typed before the start
      return;
    }
    const reason = next === "signed_off" ? "The discussion has been signed off: its record is locked."
      : "The discussion was cancelled.";
    for (const editor of byId.values()) editor.lock(reason);
    showNotice("live-reload", `${reason} Reload the page to see it.`);
  }

  /** Sections with text not in the record yet: typed, or sent and not yet answered. */
  const unsaved = () => [...byId.values()].filter((e) => e.dirty || e.sent !== null);
  let posting = null; // the section whose own form posts its text

  // Every form here loads a new page: a section's Save, move on, sign off, and the forms
  // that live notices add later (kept texts, actions), so listen on the whole page.
  // First save what is typed and not yet saved, so nothing is lost on the way.
  root.addEventListener("submit", (event) => {
    const form = event.target;
    const own = form.matches(".app-section__form")
      ? byId.get(Number(form.closest("[data-section-id]")?.dataset.sectionId)) : undefined;
    if (own && room.synced) {
      event.preventDefault(); // saved live, without leaving the page
      own.saveSoon(0);
      return;
    }
    // A section's Save posted without the connection carries its own text, no other's.
    const others = unsaved().filter((e) => e !== own && !e.locked);
    if (!others.length || form.dataset.flushed) {
      posting = own ?? null;
      return;
    }
    event.preventDefault();
    if (!room.synced) {
      // Nothing can be saved until the connection is back: say so, and stay.
      showNotice("unsaved-notice", "Not sent: some of your text is not saved yet and the "
        + "connection to the discussion is lost. Your text stays here. Try again when the "
        + "page says it is live.");
      document.getElementById("unsaved-notice")?.focus();
      return;
    }
    const submitter = event.submitter;
    for (const editor of others) editor.save();
    const started = Date.now();
    const resubmit = () => {
      const waiting = others.some((e) => e.sent !== null);
      if (waiting && Date.now() - started < 5_000) {
        setTimeout(resubmit, 100);
        return;
      }
      form.dataset.flushed = "1";
      form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      delete form.dataset.flushed;
    };
    resubmit();
  });

  // Leaving any other way (a link, a reload, closing the tab) with text not yet saved,
  // or only on this page because the record was locked: the browser asks first.
  window.addEventListener("beforeunload", (event) => {
    if (!unsaved().some((e) => e !== posting)) return;
    event.preventDefault();
    event.returnValue = ""; // browsers that ignore preventDefault here
  });

  window.discussionRoom = room;
  room.start();
}

const discussionRoot = document.querySelector("#discussion[data-discussion]");
if (discussionRoot && ["scheduled", "in_progress"].includes(discussionRoot.dataset.status)) {
  initDiscussion(discussionRoot);
}
