// The same demo app served by Koa over HTTP/1.1 (keep-alive), for comparison.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import app from '../examples/demo-app';

const server = http.createServer(app.callback());
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`koa ready port=${(server.address() as AddressInfo).port}\n`));
