// The connector's identity on disk: its key, the certificate the CA issued at enrollment
// (renewed at half life), and the CA it trusts. Written 0600, replaced atomically.
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ApiClient, fetchPinnedCa } from '../api-client/index.js';
import { createKeyAndCsr, BACKDATE_MS } from '../ca/index.js';
import { PosternError, errorMessage } from '../errors.js';

const credentialsSchema = z.object({
  connectorId: z.string(),
  name: z.string(),
  server: z.string().url(),
  caPem: z.string(),
  certPem: z.string(),
  keyPem: z.string(),
});

export type ConnectorCredentials = z.infer<typeof credentialsSchema>;

export interface JoinToken {
  readonly secret: string;
  readonly caPin: string;
}

export function parseJoinToken(token: string): JoinToken {
  const [prefix, secret, pin, ...rest] = token.trim().split('.');
  if (prefix !== 'pjt1' || !secret || !pin || rest.length > 0) {
    throw new PosternError('token_invalid', 'join token is malformed: expected pjt1.<secret>.<ca-pin> from `postern connector token create`');
  }
  return { secret, caPin: pin };
}

export async function readCredentials(path: string): Promise<ConnectorCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PosternError('config_invalid', `cannot read credentials ${path}: ${errorMessage(err)}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new PosternError('config_invalid', `credentials ${path} are not JSON (delete the file and enroll again)`, { cause });
  }
  const parsed = credentialsSchema.safeParse(json);
  if (!parsed.success) throw new PosternError('config_invalid', `credentials ${path} are incomplete (delete the file and enroll again)`);
  return parsed.data;
}

export async function writeCredentials(path: string, credentials: ConnectorCredentials): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  await rename(temporary, path);
}

interface IssuedResponse {
  connectorId: string;
  name: string;
  certificate: string;
  ca: string;
}

/** Join token → CSR → certificate. The token's pin decides which CA to trust. */
export async function enroll(server: string, token: string, name: string, proxy?: URL): Promise<ConnectorCredentials> {
  const join = parseJoinToken(token);
  const caPem = await fetchPinnedCa(server, join.caPin, proxy);
  const { keyPem, csrPem } = await createKeyAndCsr(name);
  const client = new ApiClient({ server, caPem, ...(proxy ? { proxy } : {}) });
  const issued = await client.post<IssuedResponse>('/api/v1/connectors/enroll', { token: join.secret, csr: csrPem, name });
  return { connectorId: issued.connectorId, name: issued.name, server, caPem: issued.ca, certPem: issued.certificate, keyPem };
}

/** A new key and certificate, authenticated by the current (still valid) certificate. */
export async function renew(current: ConnectorCredentials, server: string, proxy?: URL): Promise<ConnectorCredentials> {
  const { keyPem, csrPem } = await createKeyAndCsr(current.name);
  const client = new ApiClient({
    server, caPem: current.caPem, clientCert: { certPem: current.certPem, keyPem: current.keyPem }, ...(proxy ? { proxy } : {}),
  });
  const issued = await client.post<IssuedResponse>('/api/v1/connectors/renew', { csr: csrPem });
  return { ...current, caPem: issued.ca, certPem: issued.certificate, keyPem };
}

/** When to renew: half-way through the certificate's life (not counting its backdating). */
export function renewalTime(certPem: string): Date {
  const cert = new X509Certificate(certPem);
  const issued = Date.parse(cert.validFrom) + BACKDATE_MS;
  const to = Date.parse(cert.validTo);
  return new Date(issued + (to - issued) / 2);
}
