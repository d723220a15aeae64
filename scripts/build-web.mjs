// Bundles the dashboard (web/) into dist/web: index.html, assets/main.js and
// assets/main.css. Everything is served by agentd itself; nothing is fetched
// from elsewhere at run time. Prints the gzipped size of what a browser loads.
import { build } from "esbuild";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

/** The bundle must stay under this many gzipped bytes (issue 16). */
const MAX_GZIPPED_BYTES = 200 * 1024;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "dist", "web");
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, "assets"), { recursive: true });

await build({
  entryPoints: [path.join(root, "web", "main.tsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  outfile: path.join(out, "assets", "main.js"),
  legalComments: "none",
  logLevel: "warning",
});
fs.copyFileSync(path.join(root, "web", "style.css"), path.join(out, "assets", "main.css"));
fs.copyFileSync(path.join(root, "web", "index.html"), path.join(out, "index.html"));

let total = 0;
for (const file of ["index.html", "assets/main.js", "assets/main.css"]) {
  const bytes = fs.readFileSync(path.join(out, file));
  const gz = zlib.gzipSync(bytes, { level: 9 }).length;
  total += gz;
  process.stdout.write(`dashboard ${file}: ${bytes.length} bytes, ${gz} gzipped\n`);
}
process.stdout.write(`dashboard total: ${total} bytes gzipped (limit ${MAX_GZIPPED_BYTES})\n`);
if (total > MAX_GZIPPED_BYTES) {
  process.stderr.write("dashboard bundle is over its size limit\n");
  process.exit(1);
}
