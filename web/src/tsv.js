// The activity datasets' TSV (shared/datasets/tsv.py, GET /api/datasets/{id}): UTF-8, a header row, then
// one line per row, every line ending in "\n", cells separated by tabs. Inside a value a backslash, a tab,
// a line feed and a carriage return are written "\\", "\t", "\n" and "\r", so a raw tab or line feed is
// always a separator. An empty cell reads as "" (a null value is written empty). A backslash before any
// other character is kept as it is.

const ESCAPES = { "\\": "\\", t: "\t", n: "\n", r: "\r" };
const unescapeCell = (cell) => (cell.includes("\\") ? cell.replace(/\\(.)/gs, (m, c) => ESCAPES[c] ?? m) : cell);

/** `{columns, rows}` from the text of a dataset: rows are arrays of strings in `columns` order. */
export function parseTsv(text) {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const [head, ...rest] = lines;
  return {
    columns: head ? head.split("\t").map(unescapeCell) : [],
    rows: rest.map((line) => line.split("\t").map(unescapeCell)),
  };
}
