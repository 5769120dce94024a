// The checker's byte strings. The formats themselves (a payload's routing fields, a dead entry,
// an index entry) are read by shared/store/format/, as the scripts read them.
//
// Everything here works on "byte strings": Redis replies read as Buffers and decoded as latin1,
// one character per byte. A key is compared byte for byte, as Redis compares it; decoding
// replies as UTF-8 would turn invalid bytes into U+FFFD and hide the very mismatches (a lone
// surrogate's key stored as two different byte sequences) the checker is for.

/** A byte string: each character is one byte (latin1). */
export type Bytes = string;

export const bytesOf = (buffer: Buffer): Bytes => buffer.toString('latin1');
export const bufferOf = (bytes: Bytes): Buffer => Buffer.from(bytes, 'latin1');
/** For messages: the bytes as UTF-8 text (invalid sequences shown as U+FFFD), quoted. */
export const shown = (bytes: Bytes): string => JSON.stringify(bufferOf(bytes).toString('utf8'));

/** Whether the bytes are one JSON document (as any decoder of the payload will need). */
export function isJson(bytes: Bytes): boolean {
  try {
    JSON.parse(bufferOf(bytes).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
