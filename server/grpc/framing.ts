// gRPC's length-prefixed messages: a 1-byte compressed flag and a 4-byte big-endian length
// before each message (grpc/doc/PROTOCOL-HTTP2.md, "Length-Prefixed-Message").
import { gunzipSync } from 'node:zlib';

export const PREFIX_BYTES = 5;

/** Writes the prefix of an uncompressed message into the first 5 bytes of `framed` (its message follows). */
export function writePrefix(framed: Buffer): Buffer {
  framed[0] = 0;
  framed.writeUInt32BE(framed.length - PREFIX_BYTES, 1);
  return framed;
}

/** A message too large once decompressed; answered RESOURCE_EXHAUSTED. */
export class TooLarge extends Error {}

/**
 * A gzip-compressed message, decompressed to at most `limit` bytes: a larger one throws
 * TooLarge as soon as the output passes the limit (a small compressed message can expand a
 * thousandfold, so the compressed size says nothing); a corrupt one throws a plain Error.
 */
export function gunzipMessage(compressed: Buffer, limit: number): Buffer {
  try {
    return gunzipSync(compressed, { maxOutputLength: Math.max(1, limit) });
  } catch (err) {
    if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new TooLarge(`the decompressed message is larger than the ${limit}-byte limit`);
    }
    throw new Error(`the gzip-compressed message could not be decompressed: ${(err as Error).message}`, { cause: err });
  }
}
