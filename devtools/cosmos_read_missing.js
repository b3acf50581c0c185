// Makes @vercel/cosmosdb-server answer a point read of a missing document with 404, as Cosmos DB does.
//
// Its read-document handler reads the stored document and then its partition key fields without
// checking that the document exists, so a missing one throws a TypeError that the server turns into a
// 500. The azure-cosmos SDK retries a 500 after a pause before shared.platform.cosmos.read_or_none
// can fall back to a query: every read of a missing document (the alert service's suppression check,
// once per rule and group and batch) cost about half a second on the local stack. This wraps the handler
// so a document that does not exist is a 404 NotFound; everything else goes to the original handler.
// install() must run before @vercel/cosmosdb-server's routes are loaded (they copy the handler).
// tests/integration/test_cosmos_server_read_missing.py checks it through the SDK.
"use strict";

const PACKAGE = "@vercel/cosmosdb-server/lib";

function install() {
  const handler = require(`${PACKAGE}/handler/read-document`);
  const partitionHeader = require(`${PACKAGE}/utils/get-partition-from-header`);
  const trueHeader = require(`${PACKAGE}/true-header`).default;
  const original = handler.default;
  if (original.__answersMissingWith404) return;
  const wrapped = (account, req, res, params) => {
    const collection = account.database(params.dbId).collection(params.collId);
    if (collection.read() && !trueHeader(req, "x-ms-documentdb-query-enablecrosspartition")) {
      const key = partitionHeader.parsePartitionKey(partitionHeader.default(req), params.docId);
      if (collection.document(params.docId, key).read() === undefined) {
        res.statusCode = 404;
        return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
      }
    }
    return original(account, req, res, params);
  };
  wrapped.__answersMissingWith404 = true;
  handler.default = wrapped;
}

module.exports = { install };
