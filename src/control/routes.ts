// A tiny route table over fastify: every route declares its zod schemas once; they validate
// the request and produce the OpenAPI document, so the docs cannot drift from the code.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PosternError } from '../errors.js';
import { formatZodIssue } from '../zod-issues.js';
import type { ApiTokenScope } from '../store/index.js';

/**
 * Who may call a route: an API token with a scope (`sockets:write`…; `admin` = only tokens with
 * the admin scope) or a person's CLI session token whose role grants it (src/control/roles.ts),
 * `user` (any API token or CLI session token from `postern login`), `public`, or `connector`
 * (its client certificate).
 */
export type AuthMode = ApiTokenScope | 'user' | 'public' | 'connector';

export interface RouteSpec<B extends z.ZodType, P extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  summary: string;
  auth: AuthMode;
  body?: B;
  params?: P;
  response?: z.ZodType;
  status?: number;
  /** An admin change: recorded in the audit trail with the entity before (from `current`) and the answer after. */
  change?: { entity: string; current?: (params: z.infer<P>) => Promise<unknown> };
  handler: (input: { body: z.infer<B>; params: z.infer<P>; request: FastifyRequest; reply: FastifyReply }) => Promise<unknown>;
}

export interface ChangeRecord {
  readonly request: FastifyRequest;
  readonly entity: string;
  readonly route: string;
  readonly before: unknown;
  readonly after: unknown;
}

export interface RouteTable {
  add<B extends z.ZodType = z.ZodUndefined, P extends z.ZodType = z.ZodObject<{}>>(spec: RouteSpec<B, P>): void;
  openApi(info: { title: string; version: string }): unknown;
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new PosternError('bad_request', `${what}: ${formatZodIssue(result.error)}`);
  return result.data;
}

/** Secrets never reach the audit trail, whatever route they come back from. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, /token|secret|password|private/i.test(k) ? '[redacted]' : redactSecrets(v)]));
}

export function createRouteTable(app: FastifyInstance, authenticate: (request: FastifyRequest, mode: AuthMode) => Promise<void>, onChange?: (change: ChangeRecord) => void): RouteTable {
  const specs: RouteSpec<z.ZodType, z.ZodType>[] = [];
  return {
    add(spec) {
      specs.push(spec as unknown as RouteSpec<z.ZodType, z.ZodType>);
      app.route({
        method: spec.method,
        url: spec.url,
        handler: async (request, reply) => {
          await authenticate(request, spec.auth);
          const body = spec.body ? parseWith(spec.body, request.body ?? {}, 'body') : undefined;
          const params = spec.params ? parseWith(spec.params, request.params, 'path') : {};
          const before = spec.change?.current ? await spec.change.current(params as never).catch(() => null) : null;
          const result = await spec.handler({ body, params, request, reply } as never);
          if (spec.change) {
            onChange?.({ request, entity: spec.change.entity, route: `${spec.method} ${request.url.split('?')[0]}`, before: redactSecrets(before ?? null), after: redactSecrets(result ?? null) });
          }
          // A handler that answered itself (a 304, a hijacked stream) is left alone.
          if (reply.sent) return reply;
          if (result === undefined) return reply.code(204).send();
          return reply.code(spec.status ?? 200).send(result);
        },
      });
    },
    openApi(info) {
      const paths: Record<string, Record<string, unknown>> = {};
      for (const spec of specs) {
        const path = spec.url.replace(/:([a-zA-Z]+)/g, '{$1}');
        const parameters = [...spec.url.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
        paths[path] ??= {};
        paths[path][spec.method.toLowerCase()] = {
          summary: spec.summary,
          ...(spec.auth === 'public' ? { security: [] } : spec.auth === 'connector' ? { security: [{ connectorCertificate: [] }] } : { security: [{ bearer: spec.auth === 'user' ? [] : [spec.auth] }] }),
          ...(parameters.length ? { parameters } : {}),
          ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(spec.body) } } } } : {}),
          responses: {
            [String(spec.status ?? (spec.response ? 200 : 204))]: spec.response
              ? { description: 'OK', content: { 'application/json': { schema: jsonSchema(spec.response) } } }
              : { description: 'No content' },
            default: { description: 'Problem', content: { 'application/problem+json': { schema: problemSchema } } },
          },
        };
      }
      return {
        openapi: '3.1.0',
        info,
        servers: [{ url: '/' }],
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'An API token whose scopes include the one listed (or admin), or a CLI session token (pst1_…): of anyone on routes without a scope, of a member of the admin group on every route' },
            connectorCertificate: { type: 'mutualTLS', description: 'The connector\'s client certificate' },
          },
        },
        paths,
      };
    },
  };
}

function jsonSchema(schema: z.ZodType): unknown {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const problemSchema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
  },
  required: ['title', 'status', 'code'],
};
