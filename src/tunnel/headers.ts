// Header hygiene shared by both ends of the proxy: hop-by-hop headers never cross a hop
// (RFC 9110 §7.6.1), and HTTP/2 forbids connection-specific ones outright.
import type { IncomingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'host',
]);

/** Copies headers minus hop-by-hop ones and any named in `Connection`; keeps `host` out (it travels as :authority). */
export function stripHopByHop(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = new Set(
    String(headers.connection ?? '').split(',').map((token) => token.trim().toLowerCase()).filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key.startsWith(':') || HOP_BY_HOP.has(key) || listed.has(key)) continue;
    out[key] = value;
  }
  return out;
}
