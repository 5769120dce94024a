// gRPC status codes and how a status travels: `grpc-status` and a percent-encoded
// `grpc-message` in the trailers, or in the response headers alone (a trailers-only response).

/** The codes this server sends (grpc/doc/statuscodes.md). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** The encodings a request message may use; sent as `grpc-accept-encoding`. */
export const ACCEPT_ENCODING = 'identity,gzip';

/**
 * `grpc-message` is percent-encoded UTF-8: every byte outside printable ASCII, and '%' itself,
 * becomes %XX (grpc/doc/PROTOCOL-HTTP2.md, "Responses").
 */
export function percentEncode(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** The trailers of a call that sent its response headers already. */
export function statusTrailers(code: StatusCode, message: string): Record<string, string> {
  return code === Status.OK ? OK_TRAILERS : { 'grpc-status': String(code), 'grpc-message': percentEncode(message) };
}

export const OK_TRAILERS: Record<string, string> = Object.freeze({ 'grpc-status': '0' }) as Record<string, string>;

/** The response headers of a call that answers with a message. */
export const RESPONSE_HEADERS = Object.freeze({
  ':status': 200,
  'content-type': 'application/grpc',
  'grpc-accept-encoding': ACCEPT_ENCODING,
});

/** A trailers-only response: the status in the only HEADERS frame, which ends the stream. */
export function trailersOnly(code: StatusCode, message: string, httpStatus = 200): Record<string, string | number> {
  return {
    ':status': httpStatus,
    'content-type': 'application/grpc',
    'grpc-accept-encoding': ACCEPT_ENCODING,
    'grpc-status': String(code),
    'grpc-message': percentEncode(message),
  };
}
