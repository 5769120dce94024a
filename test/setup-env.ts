// In-process gateways and workers of the tests log nothing unless a test asks; spawned
// processes log at info (test/helpers/processes.ts), where tests read their lines.
process.env.SWITCHYARD_LOG_LEVEL ??= 'silent';
