// The ceiling: a bare grpc-js server built the usual way (proto-loader), echoing params.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const definition = protoLoader.loadSync(path.join(__dirname, '..', '..', 'proto', 'rpc.proto'));
const rpc = (grpc.loadPackageDefinition(definition) as unknown as { rpc: { RPCServer: grpc.ServiceClientConstructor } }).rpc;
const server = new grpc.Server();
server.addService(rpc.RPCServer.service, {
  handel: (call: grpc.ServerUnaryCall<{ params: string }, unknown>, callback: grpc.sendUnaryData<{ content: string }>) => {
    callback(null, { content: call.request.params });
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`echo ready port=${port}\n`);
});
