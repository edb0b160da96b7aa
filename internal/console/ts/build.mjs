// Builds the console's islands and CSS into ../assets: one file per entry,
// named by its content's hash, and manifest.json mapping entry names to
// them. With --check it builds into a temporary directory and fails when
// ../assets differs (CI: the committed assets are stale).
import * as esbuild from "esbuild";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, basename } from "node:path";

const check = process.argv.includes("--check");
const target = new URL("../assets", import.meta.url).pathname;
const out = check ? mkdtempSync(join(tmpdir(), "runyard-console-")) : target;

if (!check) {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
}
const result = await esbuild.build({
  entryPoints: { app: "src/app.ts", terminal: "src/terminal.ts", style: "src/app.css" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  entryNames: "[name]-[hash]",
  outdir: out,
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
const manifest = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  const name = basename(file);
  const entry = name.replace(/-[A-Z0-9]+\./, ".");
  if (meta.entryPoint || name.endsWith(".css")) manifest[entry] = name;
}
const sorted = Object.fromEntries(Object.entries(manifest).sort());
writeFileSync(join(out, "manifest.json"), JSON.stringify(sorted, null, 2) + "\n");

if (check) {
  const list = (d) => readdirSync(d).sort();
  const a = list(out), b = list(target);
  let stale = a.join() !== b.join();
  for (const f of a) {
    if (stale) break;
    stale = !readFileSync(join(out, f)).equals(readFileSync(join(target, f)));
  }
  rmSync(out, { recursive: true, force: true });
  if (stale) {
    console.error("internal/console/assets is stale: run scripts/console-build.sh and commit the result");
    process.exit(1);
  }
}
