// Builds the workspace's static assets into workspace/static/build/:
// the compiled stylesheet and GOV.UK Frontend's JavaScript bundle.
import { compile } from "sass";
import { copyFileSync, cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "workspace", "static", "build");
const govuk = join(root, "node_modules", "govuk-frontend", "dist");
mkdirSync(out, { recursive: true });

const css = compile(join(root, "frontend", "app.scss"), {
  loadPaths: [govuk],
  style: "compressed",
  quietDeps: true,
  silenceDeprecations: ["import", "global-builtin"],
});
writeFileSync(join(out, "app.css"), css.css);
copyFileSync(join(govuk, "govuk", "govuk-frontend.min.js"), join(out, "govuk-frontend.min.js"));
// The stylesheet refers to GOV.UK Frontend's images (the manifest storage checks each).
cpSync(join(govuk, "govuk", "assets", "images"), join(out, "images"), { recursive: true });
copyFileSync(join(govuk, "govuk", "assets", "images", "favicon.ico"), join(out, "favicon.ico"));
console.log(`built ${out}`);
