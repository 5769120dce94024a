// The numbers of the queueing rules, in one place: config derives its defaults from them and
// the store passes them to the Lua scripts as arguments.

/** Level 2 refuses new messages once its backlog exceeds this share of --capacity… */
export const LEVEL2_OFF_ABOVE = 0.8;
/** …and accepts them again once the backlog falls under this share. */
export const LEVEL2_ON_BELOW = 0.6;
/** Default --discard-threshold, as a share of --capacity. */
export const DISCARD_SHARE = 0.6;
/** Default --reserve, as a share of --concurrency (rounded down). */
export const RESERVE_SHARE = 0.1;
/** The most finished jobs kept for lookup (--keep-done), the oldest pruned first. */
export const DONE_KEPT_MAX = 10_000;
