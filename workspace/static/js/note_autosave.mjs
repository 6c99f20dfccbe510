// Autosave for the note form (add a note, edit a draft) over the case room socket.
//
// About 1.5 s after the last change (and at least every 10 s while typing goes on) the
// form is sent as {"type":"draft.save", ...} once it has a type, a date and time and a
// note. One save at a time: the next waits for the reply. The first save creates a
// draft; from then on the form edits that draft (action and hidden version follow each
// save), so "Finalise note" and "Save as draft" update it instead of adding a second
// note. A draft changed elsewhere is never overwritten unseen: both texts are shown and
// the person chooses. Nothing typed is ever removed from the form by this script.

import { CaseRoom, ConnectionBanner } from "./case_room.mjs";

const SAVE_AFTER_MS = 1_500;
const SAVE_AT_LEAST_EVERY_MS = 10_000;
const WRITING_EVERY_MS = 3_000;
const REPLY_TIMEOUT_MS = 20_000;
const RETRY_AFTER_ERROR_MS = 5_000;
const SUBMIT_WAIT_MS = 5_000;

const TIME = /^\s*(\d{1,2})[:.](\d{2})\s*$/;
const NUMBER = /^\s*(\d{1,4})\s*$/;

function pad(value, width) {
  return String(value).padStart(width, "0");
}

/** An ISO local date-time ("2026-03-27T14:30:00") from the form's boxes, or null. */
export function composeOccurred(dayText, monthText, yearText, timeText) {
  const [day, month, year] = [dayText, monthText, yearText].map((text) => {
    const match = NUMBER.exec(text || "");
    return match ? Number(match[1]) : NaN;
  });
  const time = TIME.exec(timeText || "");
  if (!time || [day, month, year].some(Number.isNaN)) return null;
  const [hour, minute] = [Number(time[1]), Number(time[2])];
  if (year < 1900 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59) return null;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCDate() !== day || date.getUTCMonth() !== month - 1) return null;
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:00`;
}

function checkedIds(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)]
    .map((input) => Number(input.value))
    .filter((id) => Number.isSafeInteger(id) && id > 0);
}

class NoteAutosave {
  constructor(form) {
    this.form = form;
    this.caseId = Number(form.dataset.case);
    this.editUrlPattern = form.dataset.editUrl || "";
    this.note = Number(form.dataset.note) || null;
    const versionInput = form.querySelector('input[name="version"]');
    this.version = versionInput ? Number(versionInput.value) || null : null;

    this.status = document.getElementById("autosave-status");
    this.compare = document.getElementById("autosave-compare");
    this.column = form.closest("[data-form-column]");
    this.panel = document.getElementById("autosave-conflict");
    this.panelMessage = document.getElementById("autosave-conflict-message");
    this.panelBody = document.getElementById("autosave-conflict-body");
    this.keepButton = document.getElementById("autosave-keep");
    this.body = form.elements.namedItem("body");

    this.edits = 0; // changes made so far
    this.sentEdits = 0; // changes included in the save in flight
    this.savedEdits = 0; // changes the server has confirmed
    this.inFlight = false;
    this.conflictVersion = null; // set while the conflict panel is open
    this.submitting = false;
    this.heldSubmit = null;
    this.forceSave = false;
    this.saveTimer = null;
    this.firstUnsavedAt = null;
    this.replyTimer = null;
    this.lastWritingSent = 0;
    this.ended = false; // access has ended: nothing more is sent
    // The page's key for the note it adds (in the form, as the server made it): the
    // autosave's first save and the form, whichever comes first, make the note, and the
    // other finds it instead of adding a second one.
    this.clientRef = form.querySelector('input[name="client_ref"]')?.value || crypto.randomUUID();

    const banner = document.getElementById("live-status");
    this.room = new CaseRoom({
      caseId: this.caseId,
      seq: Number(form.dataset.seq) || 0,
      banner: banner ? new ConnectionBanner(banner) : null,
      on: {
        reply: (message) => this.reply(message),
        error: (message) => this.error(message),
        synced: () => this.connected(),
        disconnected: () => this.disconnected(),
        refused: () => this.refused(),
        // The form page ignores other people's notes, presence and writing, and never
        // offers to reload: reloading would throw away what is being typed.
      },
    });
    window.caseRoom = this.room;
    window.noteAutosave = this;
  }

  start() {
    this.form.addEventListener("input", () => this.changed());
    this.form.addEventListener("focusout", (event) => {
      if (!event.relatedTarget || !this.form.contains(event.relatedTarget)) this.writing(false);
    });
    this.form.addEventListener("submit", (event) => this.submit(event));
    this.keepButton?.addEventListener("click", () => this.keepMine());
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) this.submitting = false;
    });
    window.addEventListener("beforeunload", (event) => {
      if (!this.submitting && this.dirty) event.preventDefault();
    });
    this.room.start();
  }

  get dirty() {
    return this.edits !== this.savedEdits || this.forceSave;
  }

  // --- typing ------------------------------------------------------------------------
  changed() {
    this.edits += 1;
    if (this.ended) return;
    this.writing(true);
    this.scheduleSave();
  }

  writing(active) {
    const now = Date.now();
    if (active && now - this.lastWritingSent < WRITING_EVERY_MS) return;
    if (!active && this.lastWritingSent === 0) return;
    if (this.room.send({ type: "writing", active })) this.lastWritingSent = active ? now : 0;
  }

  scheduleSave(delay = SAVE_AFTER_MS) {
    clearTimeout(this.saveTimer);
    const now = Date.now();
    if (this.firstUnsavedAt === null) this.firstUnsavedAt = now;
    const latest = Math.max(0, this.firstUnsavedAt + SAVE_AT_LEAST_EVERY_MS - now);
    this.saveTimer = setTimeout(() => this.save(), Math.min(delay, latest));
  }

  // --- saving ------------------------------------------------------------------------
  collect() {
    const fields = this.form.elements;
    const value = (name) => {
      const field = fields.namedItem(name);
      return field && typeof field.value === "string" ? field.value : "";
    };
    const occurredAt = composeOccurred(
      value("occurred_day"), value("occurred_month"), value("occurred_year"), value("occurred_time"),
    );
    const noteType = value("note_type");
    const body = value("body");
    if (!noteType || !occurredAt || !body.trim()) return null;
    const sensitivity = this.form.querySelector('input[name="sensitivity"]:checked');
    const significant = fields.namedItem("is_significant");
    return {
      type: "draft.save",
      note: this.note,
      version: this.note ? this.version : null,
      note_type: noteType,
      occurred_at: occurredAt,
      body,
      sensitivity: sensitivity ? sensitivity.value : "",
      is_significant: Boolean(significant && significant.checked),
      people: checkedIds(this.form, "people"),
      readers: checkedIds(this.form, "readers"),
      // "Limit to an adult's specialist agency": null is "No: the author's agency".
      restricted_person: Number(value("restricted_person")) || null,
      // For a new draft: lets the server recognise this save if it is sent again
      // after a lost reply, instead of creating a second draft.
      client_ref: this.note ? null : this.clientRef,
    };
  }

  save() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    if (this.ended || this.inFlight || this.submitting || this.conflictVersion !== null || !this.dirty) return;
    const message = this.collect();
    if (!message) {
      this.say("Not saved yet: a draft is saved automatically once it has a type, a date and time, and some text.");
      return;
    }
    if (!this.room.send(message)) {
      this.say("Not saved yet: not connected. Your text stays here and is saved when the connection is back, or use “Save as draft”.");
      return;
    }
    this.inFlight = true;
    this.sentEdits = this.edits;
    this.forceSave = false;
    this.firstUnsavedAt = null;
    this.say("Saving draft…");
    clearTimeout(this.replyTimer);
    this.replyTimer = setTimeout(() => {
      this.settled();
      this.say("Not saved yet: no reply from the server. Your text stays here; keep typing or use “Save as draft”.");
    }, REPLY_TIMEOUT_MS);
  }

  /** A save has had its answer (or never will): the next one may go. */
  settled() {
    this.inFlight = false;
    clearTimeout(this.replyTimer);
    this.replyTimer = null;
    const held = this.heldSubmit;
    this.heldSubmit = null;
    if (held) held();
  }

  reply(message) {
    if (message.type === "draft.saved") this.saved(message);
    else if (message.type === "draft.conflict") this.conflict(message);
    else if (message.type === "draft.invalid") this.invalid(message);
  }

  saved(message) {
    if (!Number.isSafeInteger(message.note) || !Number.isSafeInteger(message.version)) return;
    this.note = message.note;
    this.version = message.version;
    this.savedEdits = this.sentEdits;
    this.adoptDraft();
    this.say(`Draft saved at ${message.saved_at}`);
    this.settled();
    if (this.dirty && !this.submitting) this.scheduleSave();
  }

  /** From now on the form edits the saved draft, whichever button is pressed. */
  adoptDraft() {
    const action = this.editUrlPattern.replace(/\/0\/edit\/$/, `/${this.note}/edit/`);
    if (!action || action === this.editUrlPattern) return;
    this.form.setAttribute("action", action);
    this.form.dataset.note = String(this.note);
    this.setVersionInput(this.version);
    if (window.location.pathname !== action) {
      // Reloading the page now opens the saved draft, not an empty form.
      window.history.replaceState(window.history.state, "", action);
    }
  }

  setVersionInput(version) {
    let input = this.form.querySelector('input[name="version"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = "version";
      input.id = "id_version";
      this.form.prepend(input);
    }
    input.value = String(version);
  }

  conflict(message) {
    this.settled();
    if (!Number.isSafeInteger(message.version)) return;
    if (!this.note && Number.isSafeInteger(message.note)) {
      // This page's new draft was saved but the replies were lost: from now on the form
      // edits that draft (still at the version this page last had) instead of asking
      // to create it again.
      this.note = message.note;
      this.version = 1;
      this.adoptDraft();
    }
    this.conflictVersion = message.version;
    this.panelBody.textContent = typeof message.body === "string" ? message.body : "";
    this.panelMessage.textContent = typeof message.message === "string" ? message.message : "";
    this.panel.hidden = false;
    this.compare?.classList.add("app-compare--conflict");
    this.column?.classList.add("app-form-column--wide");
    this.say("Not saved: this draft was changed elsewhere. Your text is kept; the saved version is shown beside it.");
  }

  keepMine() {
    if (this.conflictVersion === null) return;
    this.version = this.conflictVersion;
    this.conflictVersion = null;
    if (this.note) this.setVersionInput(this.version);
    this.panel.hidden = true;
    this.compare?.classList.remove("app-compare--conflict");
    this.column?.classList.remove("app-form-column--wide");
    this.body?.focus();
    this.forceSave = true; // save this text over the other version now, knowingly
    this.save();
  }

  invalid(message) {
    this.settled();
    this.say(typeof message.message === "string" ? message.message : "Not saved yet.");
  }

  error(message) {
    const text = typeof message.message === "string" ? message.message : "Something went wrong.";
    if (this.inFlight) {
      this.settled();
      if (message.code === "rate_limited" || message.code === "server_error") {
        this.scheduleSave(RETRY_AFTER_ERROR_MS);
      }
    }
    this.say(text);
  }

  // --- the connection ----------------------------------------------------------------
  connected() {
    if (this.dirty && !this.inFlight) this.scheduleSave(0);
  }

  disconnected() {
    if (this.inFlight) {
      // The answer is lost with the connection; whatever happened, the text is still here.
      this.settled();
      this.say("Not saved yet: the connection dropped. Your text stays here and is saved when it is back.");
    }
    this.lastWritingSent = 0;
  }

  refused() {
    this.ended = true;
    clearTimeout(this.saveTimer);
    this.say("You no longer have access to this case. Nothing more is saved: your text is still in the form, so copy anything you need before leaving this page.");
  }

  // --- sending the form --------------------------------------------------------------
  submit(event) {
    if (this.submitting) return; // already on its way (a held submit being released)
    clearTimeout(this.saveTimer);
    this.writing(false);
    if (this.inFlight) {
      // Wait for the save on its way, so the form posts the draft's latest version and
      // never creates a second note beside it.
      event.preventDefault();
      const submitter = event.submitter;
      this.say("Finishing the last save…");
      let done = false;
      const go = () => {
        if (done) return;
        done = true;
        this.submitting = true;
        this.form.requestSubmit(submitter && submitter.form === this.form ? submitter : undefined);
      };
      this.heldSubmit = go;
      setTimeout(go, SUBMIT_WAIT_MS);
      return;
    }
    this.submitting = true;
  }

  say(text) {
    if (!this.status) return;
    this.status.hidden = false;
    this.status.textContent = text;
  }
}

const noteForm = document.querySelector("form[data-autosave]");
if (noteForm && Number(noteForm.dataset.case) > 0) new NoteAutosave(noteForm).start();
