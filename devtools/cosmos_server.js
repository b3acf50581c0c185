// Starts @vercel/cosmosdb-server through its JavaScript API with keep-alive connections
// (the package CLI sends "connection: close" on every response) and our own certificate.
// Its query engine is made linear in the container size first (cosmos_query_linear.js), and a point read
// of a missing document answers 404 instead of 500 (cosmos_read_missing.js).
"use strict";
const fs = require("fs");
require("./cosmos_query_linear.js").install();
require("./cosmos_read_missing.js").install();
const { createHttpsServer } = require("@vercel/cosmosdb-server");

const [host, port, certFile, keyFile] = process.argv.slice(2);
if (!host || !port || !certFile || !keyFile) {
  console.error("usage: node cosmos_server.js HOST PORT CERT_PEM KEY_PEM");
  process.exit(2);
}

const server = createHttpsServer({
  cert: fs.readFileSync(certFile),
  key: fs.readFileSync(keyFile),
  keepAlive: true,
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.on("error", (err) => {
  console.error(`cosmosdb-server failed: ${err.message}`);
  process.exit(1);
});
server.listen(Number(port), host, () => {
  console.log(`cosmosdb-server ready on https://${host}:${server.address().port}`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
