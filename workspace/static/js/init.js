// Runs first thing in <body>: tells GOV.UK Frontend's styles that JavaScript is on.
document.body.className +=
  " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " govuk-frontend-supported" : "");
