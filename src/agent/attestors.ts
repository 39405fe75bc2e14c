// Agent side of attestation: one attestor per method behind one interface, each producing the
// evidence of an attestation request (the CSR and facts are added by the caller). A join
// token attests once; a JWT is read from its file again at every attestation, so a restarted
// (or expired) JWT agent simply attests again.
import { readFile } from 'node:fs/promises';
import { AGENT_TOKEN_PREFIX } from '../api-client/index.js';
import type { AttestBody } from '../api-client/index.js';
import { PosternError, errorMessage } from '../errors.js';
import type { AgentConfig } from './config.js';

type Evidence = { method: 'join_token'; token: string } | { method: 'jwt'; issuer: string; token: string };

export interface Attestor {
  readonly method: AttestBody['method'];
  /** Whether a second attestation can succeed (false for a one-time join token). */
  readonly repeatable: boolean;
  evidence(): Promise<Evidence>;
}

/** The CA pin inside `pat1.<secret>.<ca-pin>`. */
export function agentTokenPin(token: string): string {
  const [prefix, secret, pin, ...rest] = token.trim().split('.');
  if (prefix !== AGENT_TOKEN_PREFIX || !secret || !pin || rest.length > 0) {
    throw new PosternError('token_invalid', `agent join token is malformed: expected ${AGENT_TOKEN_PREFIX}.<secret>.<ca-pin> from \`postern agent token create\``);
  }
  return pin;
}

async function readToken(file: string): Promise<string> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token) return token;
  } catch (cause) {
    throw new PosternError('config_invalid', `cannot read the token file ${file}: ${(cause as NodeJS.ErrnoException).code ?? errorMessage(cause)}`, { cause });
  }
  throw new PosternError('config_invalid', `the token file ${file} is empty`);
}

export function createAttestor(attestation: AgentConfig['attestation']): Attestor {
  if (attestation.method === 'jwt') {
    return { method: 'jwt', repeatable: true, evidence: async () => ({ method: 'jwt', issuer: attestation.issuer, token: await readToken(attestation.token_file) }) };
  }
  return {
    method: 'join_token',
    repeatable: false,
    evidence: async () => ({ method: 'join_token', token: attestation.token ?? (await readToken(attestation.token_file!)) }),
  };
}
