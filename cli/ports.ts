// The ports a process listens on are taken first, before it connects or registers anywhere;
// a port that is taken stops the process with one line naming the flag.
import { createAdminServer, type AdminServer } from '../shared/ops/admin';
import { ConfigError, type Config } from './config';

export interface StartedAdmin {
  server: AdminServer;
  port: number;
}

export function portTaken(flag: '--port' | '--admin-port', host: string, port: number): ConfigError {
  return new ConfigError(
    `${flag} ${port} is already in use on ${host} (another switchyard process?): give each process its own ${flag}, or ${flag} 0 for any free port`,
  );
}

export function isAddressInUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'EADDRINUSE' || /EADDRINUSE/.test((err as Error)?.message ?? '');
}

export async function startAdmin(config: Config): Promise<StartedAdmin> {
  const server = createAdminServer(config.adminPort, config.host);
  try {
    return { server, port: await server.start() };
  } catch (err) {
    throw isAddressInUse(err) ? portTaken('--admin-port', config.host, config.adminPort) : err;
  }
}
