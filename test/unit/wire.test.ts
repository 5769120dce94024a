// The hand-written codec of proto/rpc.proto, byte for byte against protobufjs.
import path from 'node:path';
import protobuf from 'protobufjs';
import { decodeStringField1, encodeStringField1 } from '../../shared/call/wire';

const root = protobuf.loadSync(path.join(__dirname, '..', '..', 'proto', 'rpc.proto'));
const Input = root.lookupType('rpc.Input');
const Output = root.lookupType('rpc.Output');

test("empty: nothing on the wire (proto3 default), and protobufjs's explicit empty field reads the same", () => {
  expect(encodeStringField1('')).toHaveLength(0);
  expect((Output.decode(encodeStringField1('')) as unknown as { content: string }).content).toBe('');
  expect(decodeStringField1(Buffer.from(Input.encode({ params: '' }).finish()))).toBe('');
});

test.each([
  ['ascii', '{"url":"/users/42","method":"GET"}'],
  ['unicode', 'ünïcødé ✓ 😀 日本'],
  ['200 KB', 'x'.repeat(200 * 1024)],
  ['127 bytes (one-byte length)', 'y'.repeat(127)],
  ['128 bytes (two-byte length)', 'y'.repeat(128)],
])('%s: the same bytes as protobufjs, both ways', (_name, text) => {
  const ours = encodeStringField1(text);
  expect(Buffer.from(Input.encode({ params: text }).finish())).toEqual(ours);
  expect(Buffer.from(Output.encode({ content: text }).finish())).toEqual(ours);
  expect(decodeStringField1(ours)).toBe(text);
  expect((Output.decode(ours) as unknown as { content: string }).content).toBe(text);
});

test('unknown fields are skipped and the last field 1 wins', () => {
  const writer = protobuf.Writer.create();
  writer.uint32((1 << 3) | 2).string('first');
  writer.uint32((2 << 3) | 0).uint64(123456789);
  writer.uint32((3 << 3) | 2).bytes(Buffer.from([1, 2, 3]));
  writer.uint32((4 << 3) | 5).fixed32(7);
  writer.uint32((5 << 3) | 1).fixed64(9);
  writer.uint32((1 << 3) | 2).string('second');
  expect(decodeStringField1(Buffer.from(writer.finish()))).toBe('second');
});

test('truncated input throws', () => {
  const bytes = encodeStringField1('hello world');
  expect(() => decodeStringField1(bytes.subarray(0, 5))).toThrow(/truncated/);
  expect(() => decodeStringField1(Buffer.from([0x0a]))).toThrow(/truncated/);
});
