// Output.content: `{"status_code": "<3 digits>", "data": <any>}` (SPEC section 1).
import { SwitchyardError } from '../errors';

export interface Reply {
  status: number;
  data: unknown;
}

export function encodeReply(reply: Reply): string {
  const data = reply.data === undefined ? null : reply.data;
  try {
    return `{"status_code":"${reply.status}","data":${JSON.stringify(data)}}`;
  } catch (err) {
    return `{"status_code":"500","data":${JSON.stringify(`response body is not JSON-serialisable: ${(err as Error).message}`)}}`;
  }
}

export function errorReply(err: SwitchyardError): Reply {
  return { status: err.status, data: err.detail ? { ...err.detail, message: err.message } : err.message };
}
