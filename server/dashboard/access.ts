// Who is asking the admin port, and what they may see (docs/protocol.md, "Admin port and
// dashboard"). Pure functions of the request: the peer's address, the Host header, the bearer token.
//
// - The Host check defeats DNS rebinding: a page on attacker.example whose name later resolves to
//   127.0.0.1 still sends `Host: attacker.example`. Loopback names, IP literals (no DNS involved)
//   and the name the port is bound to are served; any other Host only with the admin token.
// - Full details (error text, URLs with their query string, keys) go to a request with the admin
//   token, or to one from a loopback peer that names a loopback Host and was not forwarded by a
//   proxy. Everyone else sees them redacted.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP, isIPv4 } from 'node:net';

export interface Access {
  /** The request carries the configured admin token. */
  tokenValid: boolean;
  /** The Host header names this port (or the token makes that moot): the dashboard may answer. */
  hostAllowed: boolean;
  /** Error text, query strings and keys may be shown. */
  fullDetails: boolean;
}

/** An IPv6 address in the one form URL writes it (`0:0::1` -> `::1`, `::ffff:127.0.0.1` -> `::ffff:7f00:1`). */
function canonicalIPv6(address: string): string | null {
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return null; // e.g. a zone id (fe80::1%eth0)
  }
}

/** True for 127.0.0.0/8 and ::1, also written as IPv4-mapped IPv6 (how a dual-stack socket reports IPv4 peers). */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false;
  if (isIPv4(address)) return address.startsWith('127.');
  if (isIP(address) !== 6) return false;
  const canonical = canonicalIPv6(address) ?? '';
  const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(canonical);
  return canonical === '::1' || (mapped !== null && parseInt(mapped[1], 16) >> 8 === 127);
}

const HOST_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/**
 * The host a Host header names: lower case, without its port or the brackets of an IPv6
 * literal, without a trailing dot. Null when missing or malformed (then nothing is served).
 */
export function hostOf(header: string | undefined): string | null {
  if (!header || header.length > 255) return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(header.trim());
  if (!m || (m[3] !== undefined && Number(m[3]) > 65535)) return null;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? m[1].toLowerCase() : null;
  const name = m[2].toLowerCase().replace(/\.$/, '');
  return isIPv4(name) || HOST_NAME.test(name) ? name : null;
}

/** localhost, or a loopback address written as a literal. */
export function isLoopbackHost(host: string | null): boolean {
  return host !== null && (host === 'localhost' || isLoopbackPeer(host));
}

/** Loopback names, any IP literal (DNS is not involved), or the name the port is bound to. */
export function hostAllowed(host: string | null, bindHost: string): boolean {
  if (host === null) return false;
  return isLoopbackHost(host) || isIP(host) !== 0 || host === bindHost.toLowerCase().replace(/\.$/, '');
}

/** A proxy in front of the port says so with one of these: its loopback address is then not the caller's. */
function forwarded(req: IncomingMessage): boolean {
  return req.headers.forwarded !== undefined || req.headers['x-forwarded-for'] !== undefined || req.headers['x-real-ip'] !== undefined;
}

/** Compares in constant time whatever the lengths (digests of equal size). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

export function tokenMatches(req: IncomingMessage, adminToken: string | undefined): boolean {
  const given = req.headers.authorization;
  return adminToken !== undefined && adminToken !== '' && typeof given === 'string' && sameSecret(given, `Bearer ${adminToken}`);
}

export function accessOf(req: IncomingMessage, o: { adminToken?: string; bindHost: string }): Access {
  const tokenValid = tokenMatches(req, o.adminToken);
  const host = hostOf(req.headers.host);
  const loopbackCaller = isLoopbackPeer(req.socket.remoteAddress) && isLoopbackHost(host) && !forwarded(req);
  return { tokenValid, hostAllowed: tokenValid || hostAllowed(host, o.bindHost), fullDetails: tokenValid || loopbackCaller };
}
