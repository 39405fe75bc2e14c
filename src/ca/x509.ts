// Loads @peculiar/x509 with what it needs (a Reflect polyfill and Node's WebCrypto),
// so the rest of the CA imports one ready module.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle;
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Certificates start this far in the past, so a peer whose clock runs slow still accepts them. */
export const BACKDATE_MS = 5 * 60 * 1000;
