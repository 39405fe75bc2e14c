// Which part of Postern a host name addresses: the control plane (the domain itself),
// a socket (`<name>.<domain>`), or nothing we serve. Pure, so it is tested alone.
import { SOCKET_NAME_PATTERN } from '../store/index.js';

export type HostRoute =
  | { readonly kind: 'control' }
  | { readonly kind: 'socket'; readonly name: string }
  | { readonly kind: 'unknown'; readonly host: string };

/** Host without port, lower-cased; IPv6 brackets removed. */
export function hostOnly(hostHeader: string): string {
  const value = hostHeader.trim().toLowerCase();
  if (value.startsWith('[')) return value.slice(1, value.indexOf(']'));
  const colon = value.lastIndexOf(':');
  return (colon > 0 && value.indexOf(':') === colon ? value.slice(0, colon) : value).replace(/\.$/, '');
}

export function routeHost(host: string | undefined, domain: string): HostRoute {
  if (!host) return { kind: 'control' };
  const name = hostOnly(host);
  if (name === domain || isIpLiteral(name)) return { kind: 'control' };
  const suffix = `.${domain}`;
  if (name.endsWith(suffix)) {
    const label = name.slice(0, -suffix.length);
    if (SOCKET_NAME_PATTERN.test(label)) return { kind: 'socket', name: label };
  }
  return { kind: 'unknown', host: name };
}

export function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
