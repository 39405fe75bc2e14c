// The pin of a CA certificate: what a join token carries so a connector can trust the right
// server from an untrusted first connection.
import { X509Certificate, createHash } from 'node:crypto';

/** SHA-256 of the certificate's DER, base64url: stable however the PEM is laid out. */
export function caPin(caPem: string): string {
  return createHash('sha256').update(new X509Certificate(caPem).raw).digest('base64url');
}
