// The one error type of Switchyard. Every failure that reaches a caller carries an HTTP-like
// status; `toReply` is the single boundary that turns it into Output.content.

export class SwitchyardError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra fields merged into `data` next to `message` (e.g. `{state: 'refused'}`). */
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'SwitchyardError';
  }
}

export const badRequest = (message: string): SwitchyardError => new SwitchyardError(400, message);
export const redisUnavailable = (why: string): SwitchyardError =>
  new SwitchyardError(503, `queue unavailable: ${why}`);
