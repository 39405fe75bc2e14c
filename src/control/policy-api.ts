// Policies over the API: apply (validated, versioned, recorded as an admin change with before
// and after), list, show, history, delete, validate (for `policy diff`), check (every problem of
// an editor's text on its line) and test, which explains the decision for a made-up request
// against exactly what the edges enforce, in the words `postern policy test` prints.

import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { stringify as toYaml } from 'yaml';
import type { AuditRecord, PolicyRecord, PolicyVersionRecord, ServiceRecord, Store } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { PosternError } from '../errors.js';
import { parseServiceSpiffeId } from '../ca/index.js';
import { canonicalTarget, checkPolicySource, compileWithSocketPolicies, describedSshAction, explain, explanationLines, outsideMessage, parseDuration, policyCoverage, requestContext, ruleLabel, socketNamespace, suggestPolicies, suggestionsYaml, validatePolicyDocument } from '../policy/index.js';
import type { Action, NamedSocket, ObservedFlow, PolicyDocument, SourceProblem } from '../policy/index.js';
import { pageQuery, policyApplyBody, policyCheckAnswer, policyCheckBody, policyListAnswer, policyTestAnswer, policyTestBody, policyVersionView, policyVersionsAnswer, policyVersionsQuery, policyView } from './policy-types.js';
import type { PolicyCheckAnswer, PolicyVersionView, PolicyView } from './policy-types.js';
import { parseWith } from './routes.js';
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

/** `name` or `namespace/…/name`, URL-encoded as one path segment. */
const refParams = z.object({ ref: z.string().min(1).max(300) });
const versionParams = z.object({ ref: z.string().min(1).max(300), version: z.coerce.number().int().min(1) });
const DEFAULT_PAGE = 500;

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

/** `line 4, column 13: rules[0].effect: expected allow or deny, got "alow"`. */
function problemLine(problem: SourceProblem): string {
  return `line ${problem.line}, column ${problem.column}: ${problem.path ? `${problem.path}: ` : ''}${problem.message}`;
}

/** The document of an apply or validate; text with problems is refused with every problem on its line (`errors` in the answer). */
function documentFrom(body: z.infer<typeof policyApplyBody>): PolicyDocument {
  if (body.text === undefined) return validatePolicyDocument(body.document);
  const checked = checkPolicySource(body.text);
  if (!('document' in checked)) throw new PosternError('bad_request', checked.problems.map(problemLine).join('; '), { problem: { errors: checked.problems } });
  return checked.document;
}

function checkAnswer(text: string): PolicyCheckAnswer {
  const checked = checkPolicySource(text);
  if (!('document' in checked)) return { valid: false, errors: [...checked.problems], document: null, ref: null };
  const { document } = checked;
  return { valid: true, errors: [], document: document as unknown as Record<string, unknown>, ref: refOf(document.namespace ?? '', document.name) };
}

function viewOf(record: PolicyRecord, sockets: readonly NamedSocket[]): PolicyView {
  const document = record.document as Record<string, unknown>;
  return { ...record, document, ref: refOf(record.namespace, record.name), yaml: toYaml(document), coverage: policyCoverage(document as unknown as PolicyDocument, sockets) };
}

function versionView(v: PolicyVersionRecord): PolicyVersionView {
  const document = v.document as Record<string, unknown> | null;
  return { version: v.version, author: v.author, createdAt: v.createdAt, document, yaml: document ? toYaml(document) : null };
}

/** The path as the edge would decide it on this socket (or the edge's refusal, as a 400). */
function testedPath(raw: string, socket: { rawPaths: boolean }): string {
  const target = canonicalTarget(raw, { rawPaths: socket.rawPaths });
  if (!target.ok) throw new PosternError('bad_request', `the edge refuses this path before any policy (${target.code}): ${target.reason}`);
  return target.path;
}

function actionOf(body: z.infer<typeof policyTestBody>, socket: { rawPaths: boolean }): Action {
  if (body.ssh_login !== undefined || body.ssh_channel !== undefined || body.ssh_command !== undefined) {
    const described = describedSshAction({ login: body.ssh_login, channel: body.ssh_channel, command: body.ssh_command });
    if ('problem' in described) throw new PosternError('bad_request', `body.ssh_${described.field}: ${described.problem}`);
    return described.ok;
  }
  if (body.database !== undefined) return { protocol: 'database', database: body.database };
  if (body.method !== undefined || body.path !== undefined) return { protocol: 'http', method: (body.method ?? 'GET').toUpperCase(), path: testedPath(body.path ?? '/', socket) };
  return { protocol: 'tls' };
}

/** An alarm window: a duration, or zero (`0s`, as the CLI documents) for none, which policy durations never are. */
const NO_ALARM = /^0+[smhd]$/;
const duration = z.string().max(20).refine((v) => NO_ALARM.test(v) || parseDuration(v) !== undefined, 'expected a duration such as 90s, 30m, 2h or 7d (0s: none)');
const alarmMsOf = (value: string | undefined) => (value === undefined ? SEVEN_DAYS_MS : parseDuration(value) ?? 0);
const suggestBody = z.object({
  namespace: z.string().max(300).optional(),
  /** Only this socket (and no service). */
  socket: z.string().max(63).optional(),
  /** Only the services of this name (and no socket). */
  service: z.string().max(63).optional(),
  /** How far back to read: a duration (`7d`) or an ISO 8601 instant; default 7d. */
  since: z.string().max(40).optional(),
  min_flows: z.number().int().min(1).max(1_000_000).optional(),
  /** How long the suggestions' first denials raise alarms (default 7d; `0s` for none). */
  alarm_for: duration.optional(),
}).strict().refine((b) => b.socket === undefined || b.service === undefined, 'give socket or service, not both');
const modeBody = z.object({
  ref: z.string().min(1).max(300).optional(),
  namespace: z.string().max(300).optional(),
  mode: z.enum(['enforce', 'observe']),
  /** Enforce: how long denials of the switched policies raise `access.alarm` (default 7d; `0s` for none). */
  alarm_for: duration.optional(),
}).strict().refine((b) => (b.ref === undefined) !== (b.namespace === undefined), 'give exactly one of ref or namespace');

/** The audit events that are observed access, read per type in keyset batches. */
const OBSERVED_TYPES = ['http.request', 'access.would_deny', 'connection.open', 'ssh.session.start', 'flow.open'] as const;
const AUDIT_BATCH = 1000;
/** Bounds on one suggestion: events read (per type) and distinct flows kept; beyond them the answer says `truncated`. */
const MAX_EVENTS_PER_TYPE = 250_000;
const MAX_FLOWS = 100_000;
const MAX_USERS = 100_000;
const MAX_SERVICES = 100_000;
/** The default look-back of a suggestion and alarm window after leaving observe mode. */
const SEVEN_DAYS_MS = 7 * 24 * 3600_000;

const underNamespace = (namespace: string, parent: string) => parent === '' || namespace === parent || namespace.startsWith(`${parent}/`);

type ObservedEvent = Pick<AuditRecord, 'type' | 'actor' | 'socket' | 'decision' | 'details'>;
type Flow = Omit<ObservedFlow, 'count'>;

/** `spiffe://<td>/ns/<namespace>/svc/<name>` of whichever trust domain: what an agent names services by. */
function serviceOfSpiffeId(id: string): { namespace: string; name: string } | undefined {
  const trustDomain = /^spiffe:\/\/([^/]+)\//.exec(id)?.[1];
  return trustDomain === undefined ? undefined : parseServiceSpiffeId(id, trustDomain);
}

/** The caller's labels as the receiving agent reported them (`details.caller.labels`), strings only. */
function callerLabelsOf(details: Readonly<Record<string, unknown>>): Record<string, string> {
  const caller = details.caller;
  const labels = typeof caller === 'object' && caller !== null ? (caller as { labels?: unknown }).labels : undefined;
  if (typeof labels !== 'object' || labels === null) return {};
  return Object.fromEntries(Object.entries(labels).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

/** A mesh event between two services (the callee's agent wrote it): its SPIFFE ids both parse, or it is no service flow. */
function serviceFlowOf(event: ObservedEvent, action: Flow['action']): Flow | undefined {
  if (!serviceOfSpiffeId(event.socket) || !serviceOfSpiffeId(event.actor)) return undefined;
  return { kind: 'service', socket: event.socket, actor: event.actor, action, callerLabels: callerLabelsOf(event.details) };
}

/** An audit event as the flow it observed, or undefined when it is not one (a denial, a WebSocket refused…). */
function flowOf(event: ObservedEvent): Flow | undefined {
  const d = event.details;
  if (!event.actor || !event.socket) return undefined;
  const mesh = event.socket.startsWith('spiffe://');
  if (event.type === 'http.request' && event.decision === 'allow' && typeof d.method === 'string' && typeof d.path === 'string') {
    const action = { protocol: 'http' as const, method: d.method, path: d.path };
    return mesh ? serviceFlowOf(event, action) : { socket: event.socket, actor: event.actor, action };
  }
  if (mesh) return event.type === 'flow.open' && event.decision === 'allow' ? serviceFlowOf(event, { protocol: 'tls' }) : undefined;
  if (event.type === 'connection.open' && d.protocol === 'tls') return { socket: event.socket, actor: event.actor, action: { protocol: 'tls' } };
  if (event.type === 'connection.open' && d.protocol === 'websocket' && typeof d.path === 'string') return { socket: event.socket, actor: event.actor, action: { protocol: 'http', method: 'GET', path: d.path } };
  if (event.type === 'ssh.session.start' && typeof d.login === 'string') return { socket: event.socket, actor: event.actor, action: { protocol: 'ssh', login: d.login } };
  return undefined;
}

/**
 * The flow an `access.would_deny` of an observing deny rule is about (an HTTP request, a TLS or
 * mesh TCP connection), or undefined: only that verdict is kept out of learning, since "no rule
 * allows" is what learning is for.
 */
function deniedFlowOf(event: ObservedEvent): Flow | undefined {
  const d = event.details;
  if (d.wouldDeny !== 'rule-denied' || !event.actor || !event.socket) return undefined;
  const action: Flow['action'] | undefined = typeof d.method === 'string' && typeof d.path === 'string' ? { protocol: 'http', method: d.method, path: d.path }
    : d.protocol === 'tls' || d.protocol === 'tcp' ? { protocol: 'tls' } : undefined;
  if (!action) return undefined;
  return event.socket.startsWith('spiffe://') ? serviceFlowOf(event, action) : { socket: event.socket, actor: event.actor, action };
}

/** The caller's labels are not part of what a flow is: the same call with relabelled callers is one flow. */
const flowKey = (f: Flow) => JSON.stringify([f.kind ?? 'socket', f.socket, f.actor, f.action]);

/** Every declared service, a page at a time, up to the bound (`truncated` past it). */
async function declaredServices(store: Store): Promise<{ services: ServiceRecord[]; truncated: boolean }> {
  const services: ServiceRecord[] = [];
  for (let after: string | undefined, read = 0; read < MAX_SERVICES; read += AUDIT_BATCH) {
    const page = await store.agents.services.list({ limit: AUDIT_BATCH, ...(after === undefined ? {} : { after }) });
    services.push(...page);
    if (page.length < AUDIT_BATCH) return { services, truncated: false };
    after = page[page.length - 1]!.id;
  }
  return { services, truncated: true };
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

  routes.add({ method: 'GET', url: '/api/v1/policies', summary: 'List policies (newest version of each), by ref; ?cursor=<ref>&limit=', auth: 'policies:read', response: policyListAnswer,
    handler: async ({ request }) => {
      const query = parseWith(pageQuery, request.query ?? {}, 'query');
      const [policies, sockets] = await Promise.all([store.policies.list(), store.sockets.list()]);
      const sorted = policies.map((p) => ({ p, ref: refOf(p.namespace, p.name) })).sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
      const from = query.cursor === undefined ? sorted : sorted.filter((e) => e.ref > query.cursor!);
      const page = from.slice(0, query.limit ?? DEFAULT_PAGE);
      return { policies: page.map((e) => viewOf(e.p, sockets)), next: page.length < from.length ? page[page.length - 1]!.ref : null };
    } });
  routes.add({ method: 'PUT', url: '/api/v1/policies', summary: 'Create or replace a policy from its document (YAML/JSON text or an object)', auth: 'policies:write', body: policyApplyBody,
    handler: async ({ body, request }) => {
      const document = documentFrom(body);
      const namespace = document.namespace ?? '';
      // A policy naming a socket it cannot govern would be stored and silently do nothing.
      const coverage = policyCoverage(document, await store.sockets.list());
      const [outside] = coverage.outside;
      if (outside) throw new PosternError('bad_request', outsideMessage(namespace, outside));
      const warnings = coverage.unknown.map((name) => `socket ${name} does not exist (yet): the policy governs it once it is created`);
      const author = actorOf(request);
      const previous = await store.policies.get(namespace, document.name);
      // Leaving observe mode through apply raises alarms like `policy enforce`, unless the file says until when.
      const leavesObserve = (previous?.document as { mode?: string } | undefined)?.mode === 'observe' && document.mode !== 'observe' && document.alarm_until === undefined;
      const stored = leavesObserve ? { ...document, alarm_until: new Date(now().getTime() + SEVEN_DAYS_MS).toISOString() } : document;
      const result = await store.policies.put(namespace, document.name, stored as unknown as Record<string, unknown>, author);
      await options.caughtUp?.();
      if (result.changed) {
        options.audit({
          type: 'admin.change', actor: author, clientIp: request.ip, reason: `policy ${refOf(namespace, document.name)} ${result.previous ? `updated to version ${result.record.version}` : 'created'}`,
          details: { entity: 'policy', ref: refOf(namespace, document.name), before: result.previous?.document ?? null, after: result.record.document },
        });
      }
      return { policy: { ...result.record, ref: refOf(namespace, document.name) }, changed: result.changed, warnings };
    } });
  routes.add({ method: 'POST', url: '/api/v1/policies/suggest', summary: 'Policies learned from the observed traffic in the audit trail (people on sockets, services calling services; allowed and would-deny), with what enforcing them would refuse', auth: 'audit:read', body: suggestBody,
    handler: async ({ body }) => {
      const at = now();
      const sinceMs = body.since === undefined ? SEVEN_DAYS_MS : parseDuration(body.since);
      const since = sinceMs !== undefined ? new Date(at.getTime() - sinceMs).toISOString() : body.since!;
      if (sinceMs === undefined && Number.isNaN(Date.parse(since))) throw new PosternError('bad_request', `body.since: expected a duration such as 7d or an ISO 8601 instant, got ${JSON.stringify(body.since)}`);
      const inNamespace = (namespace: string) => body.namespace === undefined || underNamespace(namespace, body.namespace);
      const sockets = body.service !== undefined ? [] : (await store.sockets.list()).filter((s) => (body.socket === undefined || s.name === body.socket) && inNamespace(socketNamespace(s)));
      const wantedSockets = new Set(sockets.map((s) => s.name));
      const serviceWanted = (s: { namespace: string; name: string }) => body.socket === undefined && (body.service === undefined || s.name === body.service) && inNamespace(s.namespace);
      const declared = body.socket !== undefined ? { services: [], truncated: false } : await declaredServices(store);
      const services = declared.services.filter(serviceWanted).map((s) => ({ kind: 'service' as const, spiffeId: s.spiffeId, name: s.name, namespace: s.namespace, labels: s.labels }));
      // Services are chosen by what their SPIFFE id names, declared or not: flows to one no longer declared are reported.
      const wanted = (socket: string) => {
        if (!socket.startsWith('spiffe://')) return wantedSockets.has(socket);
        const service = serviceOfSpiffeId(socket);
        return service !== undefined && serviceWanted(service);
      };
      const flows = new Map<string, ObservedFlow>();
      const denied = new Map<string, string>();
      let truncated = declared.truncated;
      let events = 0;
      for (const type of OBSERVED_TYPES) {
        let afterId: number | undefined;
        for (let read = 0; read < MAX_EVENTS_PER_TYPE; read += AUDIT_BATCH) {
          const batch = await store.audit.list({ type, since, limit: AUDIT_BATCH, ...(body.socket ? { socket: body.socket } : {}), ...(afterId === undefined ? {} : { afterId }) });
          events += batch.length;
          for (const event of batch) {
            if (!wanted(event.socket)) continue;
            if (type === 'access.would_deny') {
              const flow = deniedFlowOf(event);
              if (flow) denied.set(flowKey(flow), event.rule);
              continue;
            }
            const flow = flowOf(event);
            if (!flow) continue;
            const key = flowKey(flow);
            const seen = flows.get(key);
            // The newest event's caller labels win: they are what the caller carries now.
            if (seen) flows.set(key, { ...seen, ...flow, count: seen.count + 1 });
            else if (flows.size < MAX_FLOWS) flows.set(key, { ...flow, count: 1 });
            else truncated = true;
          }
          if (batch.length < AUDIT_BATCH) break;
          afterId = batch[batch.length - 1]!.id;
          if (read + AUDIT_BATCH >= MAX_EVENTS_PER_TYPE) truncated = true;
        }
      }
      const groupsOf = new Map<string, readonly string[]>();
      for (let after: string | undefined, read = 0; read < MAX_USERS; read += AUDIT_BATCH) {
        const page = await store.users.list({ limit: AUDIT_BATCH, ...(after === undefined ? {} : { after }) });
        for (const user of page) groupsOf.set(user.email.toLowerCase(), user.groups);
        if (page.length < AUDIT_BATCH) break;
        after = page[page.length - 1]!.email;
      }
      const alarmMs = alarmMsOf(body.alarm_for);
      const observed = [...flows.entries()].map(([key, f]) => (denied.has(key) ? { ...f, observedDeny: denied.get(key)! } : f));
      const suggestion = suggestPolicies(observed, [...sockets, ...services], groupsOf, {
        ...(body.min_flows ? { minFlows: body.min_flows } : {}),
        ...(alarmMs > 0 ? { alarmUntil: new Date(at.getTime() + alarmMs).toISOString() } : {}),
        description: `suggested by postern policy suggest from traffic observed since ${since}`,
      });
      return { ...suggestion, yaml: suggestionsYaml(suggestion), since, events, truncated };
    } });
  routes.add({ method: 'POST', url: '/api/v1/policies/mode', summary: 'Put a policy, or every policy of a namespace (and below), in observe or enforce mode; leaving observe raises alarms for a while', auth: 'policies:write', body: modeBody,
    handler: async ({ body, request }) => {
      const all = await store.policies.list();
      const targets = body.ref !== undefined ? [await find(body.ref)] : all.filter((p) => underNamespace(p.namespace, body.namespace!));
      if (targets.length === 0) throw new PosternError('not_found', `namespace "${body.namespace}" has no policies`);
      const alarmMs = alarmMsOf(body.alarm_for);
      const author = actorOf(request);
      const changed: { ref: string; version: number }[] = [];
      for (const record of targets) {
        // Only a policy that leaves observe mode starts raising alarms.
        if (body.mode === 'enforce' && (record.document as { mode?: string }).mode !== 'observe') continue;
        const { mode: _mode, alarm_until: _alarm, ...rest } = record.document as Record<string, unknown>;
        const document = body.mode === 'observe'
          ? { ...rest, mode: 'observe' }
          : { ...rest, ...(alarmMs > 0 ? { alarm_until: new Date(now().getTime() + alarmMs).toISOString() } : {}) };
        const result = await store.policies.put(record.namespace, record.name, validatePolicyDocument(document) as unknown as Record<string, unknown>, author);
        if (!result.changed) continue;
        const ref = refOf(record.namespace, record.name);
        changed.push({ ref, version: result.record.version });
        options.audit({ type: 'admin.change', actor: author, clientIp: request.ip, reason: `policy ${ref} set to ${body.mode} mode (version ${result.record.version})`, details: { entity: 'policy', ref, before: record.document, after: result.record.document } });
      }
      await options.caughtUp?.();
      return { mode: body.mode, changed };
    } });
  routes.add({ method: 'POST', url: '/api/v1/policies/validate', summary: 'Parse and check a policy document without storing it', auth: 'policies:read', body: policyApplyBody,
    handler: async ({ body }) => ({ document: documentFrom(body) }) });
  routes.add({ method: 'POST', url: '/api/v1/policies/check', summary: 'Every problem of a policy text, each with its line and column (the editor checks as one types)', auth: 'policies:read', body: policyCheckBody, response: policyCheckAnswer,
    handler: async ({ body }) => checkAnswer(body.text) });
  routes.add({ method: 'POST', url: '/api/v1/policies/test', summary: 'Explain the decision for a request against the stored policies', auth: 'policies:read', body: policyTestBody, response: policyTestAnswer,
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
      const answer = {
        ...explanation,
        rule: explanation.rule ? ruleLabel(explanation.rule) : null,
        recheckAt: explanation.recheckAt?.toISOString() ?? null,
        rules: explanation.rules.map((r) => ({ ...r, label: ruleLabel(r) })),
        context: { ...context, at: context.at.toISOString() },
        knownUser: user !== undefined,
        groups,
      };
      return { ...answer, lines: explanationLines(answer, body.email) };
    } });
  routes.add({ method: 'GET', url: '/api/v1/policies/:ref', summary: 'Show a policy (ref = name or namespace/name, URL-encoded)', auth: 'policies:read', params: refParams, response: policyView,
    handler: async ({ params }) => {
      const [record, sockets] = await Promise.all([find(params.ref), store.sockets.list()]);
      return viewOf(record, sockets);
    } });
  const history = async (ref: string) => {
    const { namespace, name } = splitRef(ref);
    const versions = await store.policies.versions(namespace, name);
    if (versions.length === 0) throw new PosternError('not_found', `policy "${ref}" has no history`);
    return versions;
  };
  routes.add({ method: 'GET', url: '/api/v1/policies/:ref/versions', summary: 'The versions of a policy with who made each and when, oldest first (?order=desc for newest first; ?cursor=<version>&limit=)', auth: 'policies:read', params: refParams, response: policyVersionsAnswer,
    handler: async ({ params, request }) => {
      const query = parseWith(policyVersionsQuery, request.query ?? {}, 'query');
      const all = await history(params.ref);
      const ordered = query.order === 'desc' ? [...all].reverse() : all;
      const cursor = query.cursor;
      const from = cursor === undefined ? ordered : ordered.filter((v) => (query.order === 'desc' ? v.version < cursor : v.version > cursor));
      const page = from.slice(0, query.limit ?? DEFAULT_PAGE);
      return { versions: page.map(versionView), next: page.length < from.length ? page[page.length - 1]!.version : null };
    } });
  routes.add({ method: 'GET', url: '/api/v1/policies/:ref/versions/:version', summary: 'One version of a policy, as its document and YAML', auth: 'policies:read', params: versionParams, response: policyVersionView,
    handler: async ({ params }) => {
      const found = (await history(params.ref)).find((v) => v.version === params.version);
      if (!found) throw new PosternError('not_found', `policy "${params.ref}" has no version ${params.version}`);
      return versionView(found);
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
