// Prints, as one JSON line, the answers of @zeit/cosmosdb-query (cosmosdb-server's engine) to a fixed set
// of queries over fixed documents; with --linear, after devtools/cosmos_query_linear.js is installed.
// tests/integration/test_cosmos_server_linear.py runs it both ways and compares.
"use strict";
const path = require("path");
const devtools = path.resolve(__dirname, "..", "..", "devtools");
const linear = process.argv.includes("--linear");
if (linear) require(path.join(devtools, "cosmos_query_linear.js")).install();
const createQuery = require(path.join(devtools, "node_modules", "@zeit", "cosmosdb-query")).default;

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (values) => values[Math.floor(random() * values.length)];
const documents = [];
for (let i = 0; i < 400; i += 1) {
  const targets = Array.from({ length: Math.floor(random() * 4) }, (_, k) => ({
    display: pick(["Ana", "Bob", "Policy A", "Mailbox"]) + k,
    modified: Array.from({ length: Math.floor(random() * 3) }, () => ({ name: pick(["State", "Rules"]) })),
  }));
  const document = {
    id: `e${String(i).padStart(4, "0")}`,
    _rid: `r${String(i).padStart(6, "0")}`,
    pk: pick(["t:2026-11", "t:2026-12"]),
    timestamp: `2026-${pick(["11", "12"])}-${String(1 + Math.floor(random() * 28)).padStart(2, "0")}T0${i % 10}:00:00.000Z`,
    service: pick(["Exchange", "Directory", "Teams"]),
    result: pick(["success", "failure"]),
    tags: random() < 0.3 ? [pick(["reviewed", "privileged"])] : [],
    actor: random() < 0.9 ? { upn: pick(["ana@contoso.com", "bob@contoso.com", null]) } : undefined,
    targets,
  };
  if (random() < 0.1) delete document.tags;
  documents.push(document);
}
const composite = [[{ path: "/timestamp", order: "descending" }, { path: "/id", order: "descending" }]];
const queries = [
  ["SELECT * FROM c", []],
  ["SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk", [["@pk", "t:2026-11"]]],
  [
    "SELECT TOP @limit * FROM c WHERE c.pk = @pk AND c.timestamp >= @start ORDER BY c.timestamp DESC, c.id DESC",
    [["@limit", 25], ["@pk", "t:2026-12"], ["@start", "2026-12-05"]],
  ],
  ["SELECT c.id, t.display FROM c JOIN t IN c.targets WHERE c.result = 'failure'", []],
  ["SELECT c.id, t.display, m.name FROM c JOIN t IN c.targets JOIN m IN t.modified", []],
  [
    "SELECT VALUE c.id FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.targets WHERE CONTAINS(LOWER(t.display), @q))",
    [["@q", "policy"]],
  ],
  ["SELECT c.id FROM c WHERE ARRAY_CONTAINS(c.tags, @tag)", [["@tag", "reviewed"]]],
  ["SELECT VALUE c.timestamp FROM c WHERE c.service IN ('Exchange', 'Teams') AND NOT IS_DEFINED(c.tags)", []],
  ["SELECT c.id, c.actor.upn FROM c WHERE IS_NULL(c.actor.upn) OR NOT IS_DEFINED(c.actor)", []],
  ["SELECT VALUE COUNT(1) FROM c JOIN t IN c.targets WHERE STARTSWITH(t.display, 'A')", []],
  ["SELECT c.id, ARRAY(SELECT VALUE t.display FROM t IN c.targets) AS names FROM c WHERE c.pk = 't:2026-11'", []],
  ["SELECT VALUE {id: c.id, n: ARRAY_LENGTH(c.targets)} FROM c WHERE ARRAY_LENGTH(c.targets) > 1", []],
];
const answers = [];
const generated = [];
for (const [sql, parameters] of queries) {
  const query = createQuery(sql);
  generated.push(query.code);
  const { result } = query.exec(documents, {
    parameters: parameters.map(([name, value]) => ({ name, value })),
    compositeIndexes: composite,
  });
  answers.push(result);
}
process.stdout.write(
  JSON.stringify({ linear, answers, copies: generated.filter((code) => code.includes("[...$,")).length }) + "\n",
);
