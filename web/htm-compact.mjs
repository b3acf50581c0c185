// An esbuild plugin for web/build.mjs: the console's htm templates (html`...` in web/src) shipped without
// the bytes htm ignores. esbuild minifies the code around a template but keeps its text as written, and the
// templates' indentation and closing tags are a large part of every page's chunk.
//
// Only what htm's parser (node_modules/htm/src/build.mjs) provably ignores is changed:
//   - text: htm drops the whitespace at either end of a text piece when it holds a line break
//     (/^\s*\n\s*|\s*\n\s*$/), so such a run is removed; whitespace inside a text (between words) is kept
//     as written;
//   - inside a tag, outside quotes: a run of spaces, tabs and line breaks separates like one character,
//     so it becomes one space, or none before ">" and "/>";
//   - a closing tag: htm closes the open element at "</" and skips to ">", so `</td>` becomes `</>`;
//   - a quoted attribute value without whitespace, quotes, "=", "<", ">" or "/" loses its quotes.
// The source maps show the compacted templates (their lines shift where a template spanned several). A
// template with a backslash or an
// HTML comment is left as it is. Every changed template is parsed by htm itself before and after (fields
// as placeholders): the build fails if the two trees differ in anything, so a change can never alter what a
// page renders.
import htm from "htm";
import { readFileSync } from "node:fs";

const WORDS_BEFORE_REGEX = new Set([
  "return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw", "instanceof", "yield", "await",
]);

/** Whether a "/" at `i` starts a regular expression literal (not a division), from what precedes it. */
function regexAllowed(src, i) {
  let j = i - 1;
  while (j >= 0 && /\s/.test(src[j])) j -= 1;
  if (j < 0) return true;
  if ("(,=:[!&|?{};+-*%<>~^".includes(src[j])) return true;
  const word = src.slice(0, j + 1).match(/[\w$]+$/);
  return Boolean(word && WORDS_BEFORE_REGEX.has(word[0]));
}

function skipString(src, i) {
  const quote = src[i];
  for (let j = i + 1; j < src.length; j += 1) {
    if (src[j] === "\\") j += 1;
    else if (src[j] === quote) return j + 1;
    else if (src[j] === "\n") break;
  }
  throw new Error(`unterminated string at ${i}`);
}

function skipRegex(src, i) {
  let inClass = false;
  for (let j = i + 1; j < src.length; j += 1) {
    const c = src[j];
    if (c === "\\") j += 1;
    else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    else if (c === "/" && !inClass) {
      j += 1;
      while (/[a-z]/.test(src[j] || "")) j += 1;
      return j;
    } else if (c === "\n") break;
  }
  throw new Error(`unterminated regular expression at ${i}`);
}

/**
 * Scans JavaScript from `i`; with `inField`, up to the "}" that closes a template's "${" (its index).
 * Pushes every html`...` template found on `found` as the [start, end) ranges of its static parts.
 */
function scanCode(src, i, found, inField) {
  let depth = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      const end = src.indexOf("\n", i);
      i = end < 0 ? src.length : end;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) throw new Error(`unterminated comment at ${i}`);
      i = end + 2;
    } else if (c === '"' || c === "'") {
      i = skipString(src, i);
    } else if (c === "`") {
      i = scanTemplate(src, i, found, /(^|[^\w$.])html$/.test(src.slice(Math.max(0, i - 5), i)));
    } else if (c === "/" && regexAllowed(src, i)) {
      i = skipRegex(src, i);
    } else {
      if (c === "{") depth += 1;
      if (c === "}") {
        if (inField && depth === 0) return i;
        depth -= 1;
      }
      i += 1;
    }
  }
  if (inField) throw new Error("unterminated template field");
  return i;
}

function scanTemplate(src, i, found, tagged) {
  const statics = [];
  let start = i + 1;
  for (let j = start; j < src.length; j += 1) {
    if (src[j] === "\\") j += 1;
    else if (src[j] === "`") {
      statics.push([start, j]);
      if (tagged) found.push(statics);
      return j + 1;
    } else if (src[j] === "$" && src[j + 1] === "{") {
      statics.push([start, j]);
      j = scanCode(src, j + 2, found, true);
      start = j + 1;
    }
  }
  throw new Error(`unterminated template at ${i}`);
}

// An attribute value htm reads the same without quotes: it ends at whitespace, ">" or "/>", and "=" or a
// quote inside it would start something else.
const TOKEN = /^[^\s"'`=<>/]+$/;

/** The static parts of one template, compacted as the header says (htm's parser states, in short). */
export function compactStatics(statics) {
  let inTag = false;
  let quote = "";
  return statics.map((part) => {
    let out = "";
    let text = "";
    const flushText = () => {
      out += text.replace(/^\s*\n\s*|\s*\n\s*$/g, "");
      text = "";
    };
    for (let j = 0; j < part.length; j += 1) {
      const c = part[j];
      if (!inTag) {
        if (c === "<") {
          flushText();
          inTag = true;
          out += c;
          const close = part.slice(j + 1).match(/^\/[\w.-]*>/);
          if (close) {
            out += "/>";
            j += close[0].length;
            inTag = false;
          }
        } else text += c;
      } else if (quote) {
        out += c;
        if (c === quote) quote = "";
      } else if (c === '"' || c === "'") {
        const end = part.indexOf(c, j + 1);
        const value = end < 0 ? "" : part.slice(j + 1, end);
        const after = part[end + 1];
        if (out.endsWith("=") && TOKEN.test(value) && (after === " " || after === "\n" || after === ">" || after === "/" || after === "\t")) {
          out += value;
          j = end;
        } else {
          quote = c;
          out += c;
        }
      } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
        let k = j;
        while (k < part.length && " \t\n\r".includes(part[k])) k += 1;
        // One space separates as well; before ">" or "/>" none is needed.
        if (part[k] !== ">" && !(part[k] === "/" && part[k + 1] === ">")) out += " ";
        j = k - 1;
      } else {
        if (c === ">") inTag = false;
        out += c;
      }
    }
    flushText();
    return out;
  });
}

/** What htm builds from `statics`, fields as placeholders: two equal results render the same. */
function tree(statics) {
  const h = (type, props, ...children) => ({ type, props, children });
  const fields = statics.slice(1).map((_, k) => ({ field: k }));
  return JSON.stringify(htm.bind(h)(Object.assign([...statics], { raw: statics }), ...fields));
}

/** A source file with its html`...` templates compacted; throws if one would build a different tree. */
export function compactSource(src, where = "source") {
  const found = [];
  scanCode(src, 0, found, false);
  const edits = [];
  for (const ranges of found) {
    const statics = ranges.map(([a, b]) => src.slice(a, b));
    if (statics.some((s) => s.includes("\\") || s.includes("<!--"))) continue;
    const compact = compactStatics(statics);
    if (tree(compact) !== tree(statics)) {
      throw new Error(`${where}: compacting the template at ${ranges[0][0]} would change what htm builds`);
    }
    ranges.forEach(([a, b], k) => edits.push([a, b, compact[k]]));
  }
  let out = "";
  let at = 0;
  for (const [a, b, text] of edits.sort((x, y) => x[0] - y[0])) {
    out += src.slice(at, a) + text;
    at = b;
  }
  return out + src.slice(at);
}

/** The esbuild plugin: every .js file under `srcDir` goes through compactSource. */
export function htmCompact(srcDir) {
  const escaped = srcDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return {
    name: "htm-compact",
    setup(build) {
      build.onLoad({ filter: new RegExp(`^${escaped}[\\\\/].*\\.js$`) }, (args) => ({
        contents: compactSource(readFileSync(args.path, "utf8"), args.path),
        loader: "js",
      }));
    },
  };
}
