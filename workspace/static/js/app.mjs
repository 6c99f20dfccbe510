// Starts GOV.UK Frontend's components (error summary focus, etc.), labels table cells
// for narrow screens, and asks before a page is left with typed text not sent.
import { initAll } from "../build/govuk-frontend.min.js";
import { labelTables } from "./table_labels.mjs";
import { warnBeforeLosingInput } from "./unsent.mjs";

initAll();
labelTables();
warnBeforeLosingInput();
