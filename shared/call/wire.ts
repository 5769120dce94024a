// The wire contract of proto/rpc.proto: the service definition (handel + handle) shared by the
// gateway and the client, and the protobuf codec of its two messages, each a single string field 1.
// Hand-written because it is tiny and sits on the hot path; test/unit/wire.test.ts checks it
// byte for byte against protobufjs loading proto/rpc.proto.
import type * as grpc from '@grpc/grpc-js';

/** Decodes `Input` (or `Output`): the last occurrence of field 1 wins, unknown fields are skipped. */
export function decodeStringField1(buf: Buffer): string {
  let pos = 0;
  let start = 0;
  let end = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos);
    pos = afterTag;
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === 0) {
      pos = readVarint(buf, pos)[1];
    } else if (wireType === 1) {
      pos += 8;
    } else if (wireType === 5) {
      pos += 4;
    } else if (wireType === 2) {
      const [len, afterLen] = readVarint(buf, pos);
      if (afterLen + len > buf.length) throw new Error('truncated length-delimited field');
      if (field === 1) {
        start = afterLen;
        end = afterLen + len;
      }
      pos = afterLen + len;
    } else {
      throw new Error(`unsupported wire type ${wireType}`);
    }
  }
  if (pos > buf.length) throw new Error('truncated message');
  return buf.toString('utf8', start, end);
}

/** `reserve`: bytes left unwritten before the message, for a caller that frames it (the gateway's 5-byte gRPC prefix). */
export function encodeStringField1(value: string, reserve = 0): Buffer {
  if (value.length === 0) return Buffer.alloc(reserve);
  const len = Buffer.byteLength(value);
  const header = varintSize(len) + 1;
  const out = Buffer.allocUnsafe(reserve + header + len);
  out[reserve] = 0x0a;
  let pos = reserve + 1;
  let n = len;
  while (n > 0x7f) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  out.write(value, pos, 'utf8');
  return out;
}

function readVarint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++];
    if (shift < 49) result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n >>>= 7;
    size++;
  }
  return size;
}

/** The two messages as plain objects, like proto-loader gives them (grpc-js treats a bare '' as "no message"). */
export interface Input {
  params: string;
}
export interface Output {
  content: string;
}

function unaryMethod(name: string): grpc.MethodDefinition<Input, Output> {
  return {
    path: `/rpc.RPCServer/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (input) => encodeStringField1(input.params),
    requestDeserialize: (bytes) => ({ params: decodeStringField1(bytes) }),
    responseSerialize: (output) => encodeStringField1(output.content),
    responseDeserialize: (bytes) => ({ content: decodeStringField1(bytes) }),
    originalName: name,
  };
}

/** `handel` is the wire name deployed clients use; `handle` is its correctly spelled alias. */
export const rpcServiceDefinition: grpc.ServiceDefinition = {
  handel: unaryMethod('handel'),
  handle: unaryMethod('handle'),
};
