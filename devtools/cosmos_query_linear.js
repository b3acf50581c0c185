// Makes @zeit/cosmosdb-query (the query engine of @vercel/cosmosdb-server) linear in the container size.
//
// Its generated code builds the FROM and JOIN rows with `rows.reduce(($, c) => [...$, {c}], [])`, which
// copies the accumulator on every row: a query over n documents costs O(n^2) (about 75 s for one
// query over 100,000 events on this machine, so a 100,000-event benchmark could not run). This module
// rewrites, in the generated JavaScript syntax tree, every array literal that starts with `...$` (the
// accumulator of such a reduce) into `($.push(rest...), $)`. The accumulator is always a fresh `[]`
// literal of its own reduce, so pushing onto it returns the same rows in the same order.
// tests/integration/test_cosmos_server_linear.py compares both engines' answers.
"use strict";

const generator = require("@babel/generator").default;
const transformer = require("@zeit/cosmosdb-query/lib/transformer").default;
const createQuery = require("@zeit/cosmosdb-query").default;

const ACCUMULATOR = "$";

function isAccumulatorCopy(node) {
  if (!node || node.type !== "ArrayExpression" || node.elements.length === 0) return false;
  const first = node.elements[0];
  return (
    first &&
    first.type === "SpreadElement" &&
    first.argument.type === "Identifier" &&
    first.argument.name === ACCUMULATOR
  );
}

function pushInstead(node) {
  const accumulator = { type: "Identifier", name: ACCUMULATOR };
  return {
    type: "SequenceExpression",
    expressions: [
      {
        type: "CallExpression",
        callee: {
          type: "MemberExpression",
          object: accumulator,
          property: { type: "Identifier", name: "push" },
          computed: false,
        },
        arguments: node.elements.slice(1),
      },
      { type: "Identifier", name: ACCUMULATOR },
    ],
  };
}

/** Rewrites the tree in place; returns how many accumulator copies became pushes. */
function linearize(node) {
  let rewritten = 0;
  const visit = (value) => {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i += 1) {
        if (isAccumulatorCopy(value[i])) {
          value[i] = pushInstead(value[i]);
          rewritten += 1;
        }
        visit(value[i]);
      }
      return;
    }
    if (!value || typeof value !== "object" || typeof value.type !== "string") return;
    for (const key of Object.keys(value)) {
      const child = value[key];
      if (isAccumulatorCopy(child)) {
        value[key] = pushInstead(child);
        rewritten += 1;
      }
      if (child && typeof child === "object") visit(value[key]);
    }
  };
  visit(node);
  return rewritten;
}

/** Replaces the engine's code generation for every query compiled from now on in this process. */
function install() {
  const prototype = Object.getPrototypeOf(createQuery("SELECT * FROM c"));
  if (prototype.__linear) return;
  Object.defineProperty(prototype, "code", {
    configurable: true,
    get() {
      if (!this._code) {
        const tree = transformer(this.ast);
        linearize(tree);
        this._code = generator(tree).code;
      }
      return this._code;
    },
  });
  Object.defineProperty(prototype, "__linear", { value: true });
}

module.exports = { install, linearize };
