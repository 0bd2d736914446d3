// The Host names the coordinator answers to: a page whose own name was rebound to this address (DNS rebinding) is refused.
import { isIP } from 'node:net';
import type { RequestHandler } from 'express';

/** The name in a Host header: lower case, without its port or a trailing dot; an IPv6 literal without brackets. */
export function hostName(host: string): string {
  const lower = host.trim().toLowerCase();
  const name = lower.startsWith('[') ? lower.slice(1, lower.indexOf(']')) : lower.replace(/:[0-9]*$/, '');
  return name.replace(/\.$/, '');
}

/**
 * Whether a Host header names this coordinator. An IP literal always does: only a name can be rebound, so an
 * address, whatever its port (a proxy's, a LAN address), is not an attack. Of names, `localhost`, the name the
 * coordinator listens on, and the public names its operator configured.
 */
export function servedHosts(listenHost: string, publicHosts: readonly string[]): (host: string) => boolean {
  const names = new Set(['localhost', ...publicHosts.map(hostName)]);
  if (isIP(listenHost) === 0 && isIP(hostName(listenHost)) === 0) names.add(hostName(listenHost));
  return (host) => {
    const name = hostName(host);
    return isIP(name) !== 0 || names.has(name);
  };
}

/**
 * Refuses, before any other handler and so before any CORS header, a request whose Host is not one this coordinator
 * serves. A browser thinks a rebound name same-origin with the attacker's page, so Origin checks cannot catch it.
 */
export function servedHostsOnly(served: (host: string) => boolean): RequestHandler {
  return (req, res, next) => {
    const host = req.headers.host;
    // Without a Host (HTTP/1.0) the request is not from a browser, which always sends one.
    if (host === undefined || served(host)) return next();
    res.status(421).json({
      error: {
        code: 'unknown-host',
        message: `this coordinator does not serve the name ${JSON.stringify(host)}; its operator lists public names in ERGON_PUBLIC_HOSTS`,
      },
    });
  };
}
