// Starts GOV.UK Frontend's components (error summary focus, etc.) and labels table
// cells for narrow screens.
import { initAll } from "../build/govuk-frontend.min.js";
import { labelTables } from "./table_labels.mjs";

initAll();
labelTables();
