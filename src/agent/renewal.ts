// When an agent renews its identity: at half life less a random tenth of the life (so a fleet
// started together does not renew in lockstep), never sooner than a second from now. Pure.
import { X509Certificate } from 'node:crypto';
import { BACKDATE_MS } from '../ca/index.js';

const MIN_DELAY_MS = 1_000;

/** Milliseconds from `now` until the renewal of the certificate, jittered by `random` ∈ [0, 1). */
export function agentRenewalDelay(certPem: string, now: number, random: () => number): number {
  const cert = new X509Certificate(certPem);
  const issued = Date.parse(cert.validFrom) + BACKDATE_MS;
  const life = Date.parse(cert.validTo) - issued;
  return Math.max(MIN_DELAY_MS, issued + life / 2 - random() * (life / 10) - now);
}

/** Milliseconds the certificate is still valid at `now` (negative once expired). */
export function remainingLife(certPem: string, now: number): number {
  return Date.parse(new X509Certificate(certPem).validTo) - now;
}
