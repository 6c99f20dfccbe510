// Starts GOV.UK Frontend's components (error summary focus, etc.).
import { initAll } from "../build/govuk-frontend.min.js";

initAll();
