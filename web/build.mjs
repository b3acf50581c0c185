// Builds the console into web/dist with esbuild (its binary comes inside its npm package; no CDN).
//
//   node build.mjs                 one build into web/dist
//   node build.mjs --watch         rebuild on every change (Ctrl-C stops)
//   node build.mjs --outdir DIR    build somewhere else (the budget test builds into a temporary folder)
//
// Output (the contract with the local host and the Static Web App):
//   app.js        src/main.js, an ES module, minified (its htm templates compacted by htm-compact.mjs); code it imports with import() (MSAL) is split into
//                 chunks/<name>-<hash>.js, loaded on demand and cached for a year (the name changes with
//                 the content)
//   redirect.js   src/redirect.js, the MSAL redirect bridge page's script
//   app.css       the CSS main.js imports, or src/app.css when main.js imports none
//   *.html, favicon.svg, other top-level static files of web/, and staticwebapp.config.json (the SWA reads
//                 it from the root of the deployed folder)
//   assets/<name>-<hash>.<ext>  files src imports as URLs: images, fonts, and .json (the Activity map's
//                 world, world-atlas's countries-110m TopoJSON, fetched when the page draws its map)
//   build-info.json  every file with its size and gzip size, and the budget figure: the gzipped JavaScript
//                 of the app and its libraries with MSAL and the map libraries (d3-geo, topojson-client)
//                 left out (measured by a second build that treats them as external), which
//                 tests/unit/test_web_budget.py holds to 60 KB.
//
// config.json is not built: the local host generates it from settings, and the deploy writes it.

import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { htmCompact } from "./htm-compact.mjs";

const WEB = dirname(fileURLToPath(import.meta.url));
const SRC = join(WEB, "src");
const BUDGET_GZIP_BYTES = 60 * 1024;
const MSAL = ["@azure/msal-browser", "@azure/msal-browser/*", "@azure/msal-common", "@azure/msal-common/*"];
const MSAL_INPUT = /node_modules\/@azure\/msal-(browser|common)\//; // an esbuild input of MSAL's
// The Activity map's map libraries: third-party like MSAL, imported by that page's chunk only (never at
// start-up; tests/unit/test_web_budget.py checks both), so left out of the budget figure as MSAL is.
const MAP_LIBRARIES = ["d3-geo", "d3-array", "topojson-client"];
// Top-level files of web/ that are copied as they are.
const STATIC_EXTENSIONS = [".html", ".svg", ".ico", ".png", ".webmanifest", ".txt"];
const COPIED_CONFIG = ["staticwebapp.config.json"];
const MARKER = ".console-build"; // marks a folder this script may empty

function parseArgs(argv) {
  const args = { watch: false, outdir: join(WEB, "dist") };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === "--watch") args.watch = true;
    else if (argv[i] === "--outdir" && argv[i + 1]) args.outdir = resolve(argv[++i]);
    else {
      console.error(`unknown argument ${argv[i]}; usage: node build.mjs [--watch] [--outdir DIR]`);
      process.exit(2);
    }
  }
  return args;
}

function entryPoints() {
  const entries = [];
  for (const [out, file] of [
    ["app", "main.js"],
    ["redirect", "redirect.js"],
  ]) {
    const path = join(SRC, file);
    if (existsSync(path)) entries.push({ in: path, out });
  }
  if (!entries.some((e) => e.out === "app")) {
    console.error(`console build: ${relative(process.cwd(), join(SRC, "main.js"))} is missing`);
    process.exit(1);
  }
  return entries;
}

const common = {
  absWorkingDir: WEB, // metafile paths relative to web/, wherever the build is started from
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
  // A .json import is a static file (the Activity map's world, world-atlas's TopoJSON): its URL, under
  // /assets, relative to the importing chunk (new URL(url, import.meta.url) makes it absolute).
  loader: { ".svg": "file", ".png": "file", ".woff2": "file", ".json": "file" },
  // The htm templates without the whitespace and closing-tag names htm ignores (htm-compact.mjs).
  plugins: [htmCompact(SRC)],
};

async function buildApp(outdir) {
  return esbuild.build({
    ...common,
    entryPoints: entryPoints(),
    outdir,
    splitting: true,
    entryNames: "[name]",
    chunkNames: "chunks/[name]-[hash]",
    assetNames: "assets/[name]-[hash]",
    sourcemap: "linked",
    metafile: true,
  });
}

/** Gzipped bytes of the app's JavaScript and its libraries without MSAL and the map libraries: nothing is
 * written. */
async function measureWithoutMsal() {
  const result = await esbuild.build({
    ...common,
    entryPoints: entryPoints(),
    outdir: join(WEB, ".budget"),
    splitting: true,
    entryNames: "[name]",
    chunkNames: "chunks/[name]-[hash]",
    external: [...MSAL, ...MAP_LIBRARIES],
    write: false,
    metafile: true,
  });
  let gzip = 0;
  let bytes = 0;
  const files = {};
  for (const file of result.outputFiles) {
    if (!file.path.endsWith(".js")) continue;
    const size = gzipSync(file.contents, { level: 9 }).length;
    files[relative(join(WEB, ".budget"), file.path).split(sep).join("/")] = size;
    gzip += size;
    bytes += file.contents.length;
  }
  const inputs = Object.keys(result.metafile.inputs);
  return { gzip, bytes, files, inputs };
}

function copyStatic(outdir) {
  for (const name of readdirSync(WEB)) {
    const path = join(WEB, name);
    if (!statSync(path).isFile()) continue;
    if (STATIC_EXTENSIONS.some((ext) => name.endsWith(ext)) || COPIED_CONFIG.includes(name)) {
      cpSync(path, join(outdir, name));
    }
  }
}

/**
 * The chunks the page needs at start-up, as <link rel="modulepreload">: what app.js imports statically,
 * and MSAL's chunk (main.js imports it at once, from whichever chunk auth.js lands in), with their own
 * static imports. Without them the browser discovers each chunk only after parsing the file that imports
 * it, one round trip per level. The pages' chunks (pages.js imports them on first visit) are not preloaded.
 * /config.json is preloaded too (main.js fetches it first thing).
 */
function startupPreloads(outdir, metafile) {
  const outputs = metafile.outputs;
  const key = (file) => relative(WEB, join(outdir, file)).split(sep).join("/");
  const url = (output) => "/" + relative(outdir, join(WEB, output)).split(sep).join("/");
  const holdsMsal = (output) =>
    Object.keys((outputs[output] && outputs[output].inputs) || {}).some((input) => MSAL_INPUT.test(input));
  const wanted = new Set();
  const visit = (output) => {
    for (const imported of (outputs[output] && outputs[output].imports) || []) {
      if (imported.external) continue;
      const needed =
        imported.kind === "import-statement" || (imported.kind === "dynamic-import" && holdsMsal(imported.path));
      if (!needed || wanted.has(imported.path)) continue;
      wanted.add(imported.path);
      visit(imported.path);
    }
  };
  visit(key("app.js"));
  const links = [...wanted].sort().map((output) => `<link rel="modulepreload" href="${url(output)}">`);
  return ['<link rel="preload" href="/config.json" as="fetch" crossorigin="anonymous">', ...links];
}

function injectPreloads(outdir, metafile) {
  const page = join(outdir, "index.html");
  if (!existsSync(page)) return;
  const script = '<script type="module" src="/app.js"></script>';
  const html = readFileSync(page, "utf8");
  if (!html.includes(script)) throw new Error(`index.html lacks ${script}: the preloads have no place`);
  const indent = (html.match(/\n([ \t]*)<script type="module" src="\/app\.js">/) || ["", "    "])[1];
  const links = startupPreloads(outdir, metafile).map((link) => `${link}\n${indent}`).join("");
  writeFileSync(page, html.replace(script, `${links}${script}`));
}

function buildCssFallback(outdir, metafile) {
  const emitted = Object.keys(metafile.outputs).some((p) => p.endsWith("app.css"));
  const source = join(SRC, "app.css");
  if (emitted || !existsSync(source)) return Promise.resolve();
  return esbuild.build({ ...common, entryPoints: [{ in: source, out: "app" }], outdir, metafile: false });
}

function listFiles(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listFiles(path));
    else found.push(path);
  }
  return found;
}

/** The npm packages bundled into each output file, from esbuild's metafile. */
function packagesByOutput(outdir, metafile) {
  const found = {};
  for (const [output, meta] of Object.entries(metafile.outputs)) {
    const packages = new Set();
    for (const input of Object.keys(meta.inputs)) {
      const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
      if (match) packages.add(match[1]);
    }
    found[relative(outdir, join(WEB, output)).split(sep).join("/")] = [...packages].sort();
  }
  return found;
}

function writeBuildInfo(outdir, budget, metafile) {
  const packages = packagesByOutput(outdir, metafile);
  const files = {};
  let jsBytes = 0;
  let jsGzip = 0;
  for (const path of listFiles(outdir).sort()) {
    const name = relative(outdir, path).split(sep).join("/");
    if (name === "build-info.json" || name.startsWith(".")) continue;
    const content = readFileSync(path);
    const gzip = gzipSync(content, { level: 9 }).length;
    files[name] = {
      bytes: content.length,
      gzip_bytes: gzip,
      sha256: createHash("sha256").update(content).digest("hex"),
      ...(name.endsWith(".js") ? { packages: packages[name] || [] } : {}),
    };
    if (name.endsWith(".js")) {
      jsBytes += content.length;
      jsGzip += gzip;
    }
  }
  const info = {
    built_at: new Date().toISOString(),
    files,
    js: { bytes: jsBytes, gzip_bytes: jsGzip },
    budget: {
      description:
        "gzipped JavaScript of the app and its libraries, @azure/msal-browser and the map libraries excluded",
      excluded: [...MSAL, ...MAP_LIBRARIES],
      gzip_bytes: budget.gzip,
      bytes: budget.bytes,
      limit_gzip_bytes: BUDGET_GZIP_BYTES,
      files: budget.files,
      inputs: budget.inputs,
    },
  };
  writeFileSync(join(outdir, "build-info.json"), JSON.stringify(info, null, 2) + "\n");
  return info;
}

/** The output folder is emptied first: refuse one that holds the sources or something not built here. */
function checkOutdir(outdir) {
  const inside = (child, parent) => child === parent || child.startsWith(parent + sep);
  if (inside(WEB, outdir) || inside(outdir, SRC) || inside(outdir, join(WEB, "node_modules"))) {
    throw new Error(`refusing to build into ${outdir}: it holds the console's sources`);
  }
  if (existsSync(outdir) && readdirSync(outdir).length > 0 && !existsSync(join(outdir, MARKER))) {
    throw new Error(`refusing to empty ${outdir}: it is not empty and holds no earlier build`);
  }
}

async function buildOnce(outdir) {
  checkOutdir(outdir);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  writeFileSync(join(outdir, MARKER), "web/build.mjs builds this folder and empties it first\n");
  const result = await buildApp(outdir);
  await buildCssFallback(outdir, result.metafile);
  copyStatic(outdir);
  injectPreloads(outdir, result.metafile);
  const info = writeBuildInfo(outdir, await measureWithoutMsal(), result.metafile);
  const kb = (n) => (n / 1024).toFixed(1);
  console.log(
    `console built into ${relative(process.cwd(), outdir) || "."}: ${Object.keys(info.files).length} files, ` +
      `JavaScript ${kb(info.js.gzip_bytes)} KB gzipped, ${kb(info.budget.gzip_bytes)} KB without MSAL and d3 ` +
      `(budget ${kb(BUDGET_GZIP_BYTES)} KB)`,
  );
  return info;
}

async function watch(outdir) {
  await buildOnce(outdir).catch((error) => console.error(error.message));
  const { watch: watchFiles } = await import("node:fs");
  let timer = null;
  const rebuild = () => {
    clearTimeout(timer);
    timer = setTimeout(() => buildOnce(outdir).catch((error) => console.error(error.message)), 100);
  };
  watchFiles(SRC, { recursive: true }, rebuild);
  watchFiles(WEB, (event, name) => {
    if (name && (STATIC_EXTENSIONS.some((ext) => name.endsWith(ext)) || COPIED_CONFIG.includes(name))) rebuild();
  });
  console.log("watching web/src and web/*.html; Ctrl-C stops");
}

const args = parseArgs(process.argv.slice(2));
if (args.watch) await watch(args.outdir);
else
  await buildOnce(args.outdir).catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
