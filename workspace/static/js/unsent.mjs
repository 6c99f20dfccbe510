// Text typed and not sent: a page that would lose it says so before it goes.
//
// `hasUnsentInput(root)`: whether any field inside `root` holds something other than
// what the page came with. Forms marked `data-warn-unsaved` (a plan, an addendum, a
// reason) have the browser ask before the page is left with such input in them,
// unless it is that form being sent.

/** Whether any field within `root` (not within `except`) differs from the page as loaded. */
export function hasUnsentInput(root, except = null) {
  for (const field of root.querySelectorAll("input, textarea, select")) {
    if (except?.contains(field) || field.disabled) continue;
    if (field.type === "hidden" || field.type === "submit" || field.type === "button") continue;
    if (field.type === "checkbox" || field.type === "radio") {
      if (field.checked !== field.defaultChecked) return true;
    } else if (field.tagName === "SELECT") {
      if ([...field.options].some((option) => option.selected !== option.defaultSelected)) return true;
    } else if (field.value !== field.defaultValue) {
      return true;
    }
  }
  return false;
}

/** Ask before leaving a page whose marked forms hold unsent input. */
export function warnBeforeLosingInput() {
  const forms = [...document.querySelectorAll("form[data-warn-unsaved]")];
  if (!forms.length) return;
  let sending = null;
  document.addEventListener("submit", (event) => {
    sending = event.target; // the page is left to send it: its input is not lost
  });
  window.addEventListener("beforeunload", (event) => {
    if (!forms.some((form) => form !== sending && hasUnsentInput(form))) return;
    event.preventDefault();
    event.returnValue = ""; // browsers that ignore preventDefault here
  });
}
