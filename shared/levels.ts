// The two words of an async call that every room reads: its priority level and its limit
// policy (docs/protocol.md, queue_detail). The params parser checks them, the store keys and
// scripts act on them, the worker and the operator's tools show them.

/** Priority level: 1 is never refused, 2 is shed under load. */
export type Level = 1 | 2;
/** Every message / only the newest per key / dropped under load. */
export type Policy = 'execute' | 'last' | 'discard';
