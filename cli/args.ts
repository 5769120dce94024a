// The small commands that read their own flags (check, group, move-slot) read them the same way:
// `--name value` or `--name=value`, anything else a positional word.
import { envName } from './config';

/**
 * Calls `each` for every word of argv with its name and a reader of its value (the inline
 * `=value` or the next word); a flag given without a value throws `missing(name)`.
 */
export function eachArg(argv: readonly string[], missing: (name: string) => Error, each: (name: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].startsWith('--') ? argv[i].indexOf('=') : -1;
    const [name, inline] = eq === -1 ? [argv[i], undefined] : [argv[i].slice(0, eq), argv[i].slice(eq + 1)];
    each(name, () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw missing(name);
      return v;
    });
  }
}

/** How an operator's command reaches a deployment: --redis, --prefix, --partitions (or SWITCHYARD_*). */
export interface DeploymentFlags {
  redis: string;
  prefix: string;
  /** Absent: the count stored in Redis. */
  partitions?: number;
}

/** A whole number within [min, max], or `fail` with the flag (or variable) and what was given. */
export function wholeNumber(raw: string, source: string, min: number, max: number, fail: (message: string) => Error): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw fail(`${source} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

/** The deployment flags as the environment gives them (a flag read later wins). */
export function deploymentFlagsFrom(env: NodeJS.ProcessEnv, fail: (message: string) => Error): DeploymentFlags {
  const flags: DeploymentFlags = { redis: env[envName('redis')] || 'redis://127.0.0.1:6379', prefix: env[envName('prefix')] || 'sy' };
  const partitions = env[envName('partitions')];
  if (partitions) flags.partitions = wholeNumber(partitions, envName('partitions'), 1, 1024, fail);
  return flags;
}

/** Reads one of the deployment flags into `flags`; false for any other flag. */
export function takeDeploymentFlag(flags: DeploymentFlags, name: string, value: () => string, fail: (message: string) => Error): boolean {
  if (name === '--redis') flags.redis = value();
  else if (name === '--prefix') flags.prefix = value();
  else if (name === '--partitions') flags.partitions = wholeNumber(value(), '--partitions', 1, 1024, fail);
  else return false;
  return true;
}
