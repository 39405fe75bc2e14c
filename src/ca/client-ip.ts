// The browser's address in the web terminal's client certificate. The control plane dials the
// edge on the browser's behalf, so the edge sees the control node's address; the CA writes the
// browser's into the one certificate it issues for that dial, and the edge decides, shows and
// audits the connection with it. Only CertificateAuthority.signCsr writes this name, and only
// when its caller passes `clientIp` (the terminal's issuance alone does).
import { isIP } from 'node:net';
import { BACKDATE_MS } from './x509.js';

/** A URI SAN in Postern's own namespace: `urn:postern:client-ip:203.0.113.7`. */
export const CLIENT_IP_URI_PREFIX = 'urn:postern:client-ip:';

/** The longest life of a certificate that vouches for an address: the web terminal's (it only has to outlive a TLS handshake). */
export const CLIENT_IP_CERT_LIFETIME_MS = 5 * 60_000;

/** The SAN for `ip`; anything but an IP address is a programming error. */
export function clientIpUri(ip: string): string {
  if (isIP(ip) === 0) throw new TypeError(`not an IP address: ${ip.slice(0, 80)}`);
  return `${CLIENT_IP_URI_PREFIX}${ip}`;
}

/** What a verified peer certificate says, as node:tls reports it (`getPeerCertificate()`). */
export interface PeerCertificateText {
  readonly subjectaltname?: string;
  readonly valid_from: string;
  readonly valid_to: string;
}

export type VouchedClientIp =
  | { readonly kind: 'none' }
  | { readonly kind: 'vouched'; readonly ip: string }
  | { readonly kind: 'refused'; readonly reason: string };

/** Whole-second certificate times may round up to this much. */
const ROUNDING_MS = 1_000;

/**
 * The address a certificate vouches for, or why it is not believed: a certificate that could
 * live longer than the terminal's, is older than that life, or is not bound to a sign-in is no
 * terminal's and is treated as if it carried no address.
 */
export function vouchedClientIp(cert: PeerCertificateText, bound: { readonly sessionId: string | undefined }, now: Date): VouchedClientIp {
  const uris = [...(cert.subjectaltname ?? '').matchAll(/(?:^|, )URI:([^,\s]+)/g)].map((m) => m[1]!).filter((uri) => uri.startsWith(CLIENT_IP_URI_PREFIX));
  if (uris.length === 0) return { kind: 'none' };
  if (uris.length > 1) return { kind: 'refused', reason: 'it names more than one client address' };
  const ip = uris[0]!.slice(CLIENT_IP_URI_PREFIX.length);
  if (isIP(ip) === 0) return { kind: 'refused', reason: `${ip.slice(0, 80)} is not an IP address` };
  if (bound.sessionId === undefined) return { kind: 'refused', reason: 'it is not bound to a sign-in session' };
  const notBefore = Date.parse(cert.valid_from);
  const notAfter = Date.parse(cert.valid_to);
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) return { kind: 'refused', reason: 'its validity cannot be read' };
  const maxLife = BACKDATE_MS + CLIENT_IP_CERT_LIFETIME_MS + ROUNDING_MS;
  if (notAfter - notBefore > maxLife) return { kind: 'refused', reason: `it is valid for longer than the terminal's ${CLIENT_IP_CERT_LIFETIME_MS / 60_000} minutes` };
  // Issued BACKDATE_MS after its notBefore: older than the terminal's lifetime is no fresh dial.
  if (now.getTime() - notBefore > maxLife) return { kind: 'refused', reason: `it was issued more than ${CLIENT_IP_CERT_LIFETIME_MS / 60_000} minutes ago` };
  return { kind: 'vouched', ip };
}
