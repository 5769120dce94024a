// Output.content: `{"status_code": "<3 digits>", "data": <any>}`.

export interface Reply {
  status: number;
  data: unknown;
  /**
   * For the process only, never sent: the full error behind a failed reply (a route's thrown
   * message, a deadline), for the log and the dead-letter entry.
   */
  error?: string;
}

export function encodeReply(reply: Reply): string {
  const data = reply.data === undefined ? null : reply.data;
  try {
    return `{"status_code":"${reply.status}","data":${JSON.stringify(data)}}`;
  } catch (err) {
    return `{"status_code":"500","data":${JSON.stringify(`response body is not JSON-serialisable: ${(err as Error).message}`)}}`;
  }
}
