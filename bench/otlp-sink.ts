// An OTLP/HTTP endpoint that takes every export and keeps nothing: what the tracing benchmark
// points the SDK at, so the cost measured is the SDK's and the exporter's, not a backend's.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let spans = 0;
const server = createServer((req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    spans++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`sink ready port=${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  process.stdout.write(`sink exports=${spans}\n`);
  process.exit(0);
});
