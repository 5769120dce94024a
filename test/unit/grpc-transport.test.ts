// The gRPC server's pure parts: grpc-timeout parsing, grpc-message percent-encoding, the gzip limit.
import { gzipSync } from 'node:zlib';
import { gunzipMessage, TooLarge } from '../../server/grpc/framing';
import { percentEncode } from '../../server/grpc/status';
import { parseGrpcTimeout } from '../../server/grpc/timeout';

test('grpc-timeout: every unit, 1 to 8 digits; anything else is NaN', () => {
  expect(parseGrpcTimeout('2H')).toBe(7_200_000);
  expect(parseGrpcTimeout('3M')).toBe(180_000);
  expect(parseGrpcTimeout('10S')).toBe(10_000);
  expect(parseGrpcTimeout('250m')).toBe(250);
  expect(parseGrpcTimeout('1500u')).toBeCloseTo(1.5);
  expect(parseGrpcTimeout('99999999n')).toBeCloseTo(99.999999);
  expect(parseGrpcTimeout('0m')).toBe(0);
  expect(parseGrpcTimeout('00000001S')).toBe(1000);
  for (const bad of ['', 'S', '1', '123456789S', '1s', '1h', '-1S', '1.5S', ' 1S', '1S ', '1e3m', 'abcS']) expect(parseGrpcTimeout(bad)).toBeNaN();
});

test('grpc-message: printable ASCII but % as is, everything else %XX of its UTF-8', () => {
  expect(percentEncode('plain message: (ok) ~!')).toBe('plain message: (ok) ~!');
  expect(percentEncode('100% sure')).toBe('100%25 sure');
  expect(percentEncode('ünï\n✓')).toBe('%C3%BCn%C3%AF%0A%E2%9C%93');
  expect(decodeURIComponent(percentEncode('tab\there ü %'))).toBe('tab\there ü %');
});

test('gzip: decompressed up to the limit; past it TooLarge; corrupt data a plain Error', () => {
  expect(gunzipMessage(gzipSync(Buffer.from('hello')), 5).toString()).toBe('hello');
  expect(() => gunzipMessage(gzipSync(Buffer.from('hello!')), 5)).toThrow(TooLarge);
  expect(() => gunzipMessage(gzipSync(Buffer.alloc(50 << 20)), 1000)).toThrow(/larger than the 1000-byte limit/);
  const corrupt = (): Buffer => gunzipMessage(Buffer.from('not gzip at all'), 1000);
  expect(corrupt).toThrow(/could not be decompressed/);
  expect(corrupt).not.toThrow(TooLarge);
});
