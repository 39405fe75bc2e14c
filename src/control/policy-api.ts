// Policies over the API: apply (validated, versioned, recorded as an admin change with before
// and after), list, show, history, delete, validate (for `policy diff`) and test, which
// explains the decision for a made-up request against exactly what the edges enforce.

import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Store } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { PosternError } from '../errors.js';
import { canonicalTarget, compileWithSocketPolicies, describedSshAction, explain, outsideMessage, parsePolicyDocument, policyCoverage, requestContext, ruleLabel, validatePolicyDocument } from '../policy/index.js';
import type { Action, PolicyDocument } from '../policy/index.js';
import type { NewAuditEvent, GeoLookup } from '../reporting/index.js';
import { principalOf } from './principal.js';

export interface PolicyApiOptions {
  store: Store;
  audit: (event: NewAuditEvent) => void;
  geo?: GeoLookup;
  now?: () => Date;
  /** Resolves once this node's snapshot has every change made so far (an applied policy is then in force here). */
  caughtUp?: () => Promise<void>;
}

const applyBody = z.object({
  /** The file's text (YAML or JSON): parsed here, so errors name the field path. */
  text: z.string().min(1).max(256 * 1024).optional(),
  document: z.record(z.string(), z.unknown()).optional(),
}).strict().refine((b) => (b.text === undefined) !== (b.document === undefined), 'give exactly one of text or document');
/** `name` or `namespace/…/name`, URL-encoded as one path segment. */
const refParams = z.object({ ref: z.string().min(1).max(300) });
const testBody = z.object({
  socket: z.string().min(1).max(63),
  email: z.string().email().transform((e) => e.toLowerCase()),
  groups: z.array(z.string().max(256)).max(500).optional(),
  ip: z.string().min(1).max(64),
  country: z.string().regex(/^[A-Za-z]{2}$/).transform((c) => c.toUpperCase()).optional(),
  at: z.string().datetime({ offset: true }).optional(),
  method: z.string().regex(/^[A-Za-z]{1,20}$/).optional(),
  path: z.string().startsWith('/').max(4096).optional(),
  ssh_login: z.string().min(1).max(64).optional(),
  /** shell, exec, sftp, scp, local_forward, remote_forward, agent_forwarding or x11. */
  ssh_channel: z.string().min(1).max(64).optional(),
  /** An exec's command line; alone it is an exec or an scp, as the edge would tell. */
  ssh_command: z.string().min(1).max(16 * 1024).optional(),
  database: z.string().min(1).max(63).optional(),
}).strict();

export function splitRef(ref: string): { namespace: string; name: string } {
  const slash = ref.lastIndexOf('/');
  return slash < 0 ? { namespace: '', name: ref } : { namespace: ref.slice(0, slash), name: ref.slice(slash + 1) };
}

function refOf(namespace: string, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Who made an admin change, as the audit trail names them. */
export function actorOf(request: FastifyRequest): string {
  const principal = principalOf(request);
  return principal.kind === 'token' ? `token:${principal.token.name}` : principal.user.email;
}

function documentFrom(body: z.infer<typeof applyBody>): PolicyDocument {
  return body.text !== undefined ? parsePolicyDocument(body.text) : validatePolicyDocument(body.document);
}

/** The path as the edge would decide it on this socket (or the edge's refusal, as a 400). */
function testedPath(raw: string, socket: { rawPaths: boolean }): string {
  const target = canonicalTarget(raw, { rawPaths: socket.rawPaths });
  if (!target.ok) throw new PosternError('bad_request', `the edge refuses this path before any policy (${target.code}): ${target.reason}`);
  return target.path;
}

function actionOf(body: z.infer<typeof testBody>, socket: { rawPaths: boolean }): Action {
  if (body.ssh_login !== undefined || body.ssh_channel !== undefined || body.ssh_command !== undefined) {
    const described = describedSshAction({ login: body.ssh_login, channel: body.ssh_channel, command: body.ssh_command });
    if ('problem' in described) throw new PosternError('bad_request', `body.ssh_${described.field}: ${described.problem}`);
    return described.ok;
  }
  if (body.database !== undefined) return { protocol: 'database', database: body.database };
  if (body.method !== undefined || body.path !== undefined) return { protocol: 'http', method: (body.method ?? 'GET').toUpperCase(), path: testedPath(body.path ?? '/', socket) };
  return { protocol: 'tls' };
}

export function registerPolicyApi(routes: RouteTable, options: PolicyApiOptions): void {
  const { store } = options;
  const now = options.now ?? (() => new Date());
  const find = async (ref: string) => {
    const { namespace, name } = splitRef(ref);
    const record = await store.policies.get(namespace, name);
    if (!record) throw new PosternError('not_found', `policy "${ref}" does not exist`);
    return record;
  };

  routes.add({ method: 'GET', url: '/api/v1/policies', summary: 'List policies (newest version of each)', auth: 'policies:read',
    handler: async () => {
      const [policies, sockets] = await Promise.all([store.policies.list(), store.sockets.list()]);
      return { policies: policies.map((p) => ({ ...p, ref: refOf(p.namespace, p.name), coverage: policyCoverage(p.document as unknown as PolicyDocument, sockets) })) };
    } });
  routes.add({ method: 'PUT', url: '/api/v1/policies', summary: 'Create or replace a policy from its document (YAML/JSON text or an object)', auth: 'policies:write', body: applyBody,
    handler: async ({ body, request }) => {
      const document = documentFrom(body);
      const namespace = document.namespace ?? '';
      // A policy naming a socket it cannot govern would be stored and silently do nothing.
      const coverage = policyCoverage(document, await store.sockets.list());
      const [outside] = coverage.outside;
      if (outside) throw new PosternError('bad_request', outsideMessage(namespace, outside));
      const warnings = coverage.unknown.map((name) => `socket ${name} does not exist (yet): the policy governs it once it is created`);
      const author = actorOf(request);
      const result = await store.policies.put(namespace, document.name, document as unknown as Record<string, unknown>, author);
      await options.caughtUp?.();
      if (result.changed) {
        options.audit({
          type: 'admin.change', actor: author, clientIp: request.ip, reason: `policy ${refOf(namespace, document.name)} ${result.previous ? `updated to version ${result.record.version}` : 'created'}`,
          details: { entity: 'policy', ref: refOf(namespace, document.name), before: result.previous?.document ?? null, after: result.record.document },
        });
      }
      return { policy: { ...result.record, ref: refOf(namespace, document.name) }, changed: result.changed, warnings };
    } });
  routes.add({ method: 'POST', url: '/api/v1/policies/validate', summary: 'Parse and check a policy document without storing it', auth: 'policies:read', body: applyBody,
    handler: async ({ body }) => ({ document: documentFrom(body) }) });
  routes.add({ method: 'POST', url: '/api/v1/policies/test', summary: 'Explain the decision for a request against the stored policies', auth: 'policies:read', body: testBody,
    handler: async ({ body }) => {
      const [policies, sockets, user] = await Promise.all([store.policies.list(), store.sockets.list(), store.users.findByEmail(body.email)]);
      const socket = sockets.find((s) => s.name === body.socket);
      if (!socket) throw new PosternError('not_found', `socket "${body.socket}" does not exist`);
      const groups = body.groups ?? [...(user?.groups ?? [])];
      const context = requestContext({
        socket, user: { id: user?.id ?? '', email: body.email, groups } as never, clientIp: body.ip,
        country: body.country ?? options.geo?.country(body.ip), at: body.at ? new Date(body.at) : now(), action: actionOf(body, socket),
      });
      const explanation = explain(context, compileWithSocketPolicies(policies, sockets));
      return {
        ...explanation,
        rule: explanation.rule ? ruleLabel(explanation.rule) : null,
        recheckAt: explanation.recheckAt?.toISOString() ?? null,
        rules: explanation.rules.map((r) => ({ ...r, label: ruleLabel(r) })),
        context: { ...context, at: context.at.toISOString() },
        knownUser: user !== undefined,
      };
    } });
  routes.add({ method: 'GET', url: '/api/v1/policies/:ref', summary: 'Show a policy (ref = name or namespace/name, URL-encoded)', auth: 'policies:read', params: refParams,
    handler: async ({ params }) => {
      const [record, sockets] = await Promise.all([find(params.ref), store.sockets.list()]);
      return { ...record, ref: params.ref, coverage: policyCoverage(record.document as unknown as PolicyDocument, sockets) };
    } });
  routes.add({ method: 'GET', url: '/api/v1/policies/:ref/versions', summary: 'Every version of a policy, oldest first', auth: 'policies:read', params: refParams,
    handler: async ({ params }) => {
      const { namespace, name } = splitRef(params.ref);
      const versions = await store.policies.versions(namespace, name);
      if (versions.length === 0) throw new PosternError('not_found', `policy "${params.ref}" has no history`);
      return { versions };
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/policies/:ref', summary: 'Delete a policy (its history is kept)', auth: 'policies:write', params: refParams,
    handler: async ({ params, request }) => {
      const { namespace, name } = splitRef(params.ref);
      const author = actorOf(request);
      const deleted = await store.policies.delete(namespace, name, author);
      await options.caughtUp?.();
      options.audit({ type: 'admin.change', actor: author, clientIp: request.ip, reason: `policy ${params.ref} deleted`, details: { entity: 'policy', ref: params.ref, before: deleted.document, after: null } });
      return undefined;
    } });
}
