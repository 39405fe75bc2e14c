// Agents in tests without the `postern agent` process: attested over the real API with a join
// token, holding their identity in the test, asking for SVIDs over mutual TLS as an agent does.
import https from 'node:https';
import { createKeyAndCsr, createSvidKeyAndCsr, serviceSpiffeId } from '../../src/ca/index.js';
import type { AgentIdentity } from '../../src/agent/index.js';
import type { IssuedAgent, IssuedSvid, JwtSvid } from '../../src/api-client/index.js';
import { api, loopbackLookup } from './https.js';
import type { HttpsResponse } from './https.js';
import type { ServerHandle } from './processes.js';

/** A request to the control plane with a client certificate (or none), as an agent sends it. */
export function mtlsFetch(server: ServerHandle, cert: { certPem: string; keyPem: string } | undefined, path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpsResponse> {
  const payload = init.body === undefined ? undefined : JSON.stringify(init.body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: 'localhost', port: server.port, path, method: init.method ?? 'GET', ca: server.caPem, lookup: loopbackLookup, agent: false, timeout: 10_000,
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      headers: { accept: 'application/json', ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk)).on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A new agent, attested with a join token that grants `attributes` (namespace=… lets it speak for that namespace's services). */
export async function attestAgent(server: ServerHandle, attributes: Record<string, string>): Promise<AgentIdentity> {
  const token = await api(server, '/api/v1/agents/tokens', { method: 'POST', body: { attributes } });
  if (token.status !== 201) throw new Error(`agent token: ${token.status} ${token.text}`);
  const { keyPem, csrPem } = await createKeyAndCsr('probe');
  const res = await api(server, '/api/v1/agents/attest', { method: 'POST', token: null, body: { method: 'join_token', token: token.json<{ token: string }>().token, csr: csrPem } });
  if (res.status !== 201) throw new Error(`attest: ${res.status} ${res.text}`);
  const issued = res.json<IssuedAgent>();
  return { agentId: issued.agentId, spiffeId: issued.spiffeId, certPem: issued.certificate, keyPem, caPem: issued.ca, notAfter: issued.notAfter };
}

export interface TestSvid {
  readonly spiffeId: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** The X.509-SVID of a service the agent declares (which is how the control plane learns of the service). */
export async function issueSvid(server: ServerHandle, agent: AgentIdentity, trustDomain: string, service: { namespace: string; name: string; labels: Record<string, string> }): Promise<TestSvid> {
  const spiffeId = serviceSpiffeId(trustDomain, service.namespace, service.name);
  const { keyPem, csrPem } = await createSvidKeyAndCsr(spiffeId);
  const res = await mtlsFetch(server, agent, '/api/v1/agents/svid', { method: 'POST', body: { service, csr: csrPem } });
  if (res.status !== 200) throw new Error(`svid: ${res.status} ${res.text}`);
  return { spiffeId, certPem: res.json<IssuedSvid>().certificate, keyPem };
}

export async function issueJwtSvid(server: ServerHandle, agent: AgentIdentity, service: { namespace: string; name: string }, audience: string, ttlSeconds = 300): Promise<string> {
  const res = await mtlsFetch(server, agent, '/api/v1/agents/jwt-svid', { method: 'POST', body: { ...service, audience, ttl_seconds: ttlSeconds } });
  if (res.status !== 200) throw new Error(`jwt-svid: ${res.status} ${res.text}`);
  return res.json<JwtSvid>().token;
}
