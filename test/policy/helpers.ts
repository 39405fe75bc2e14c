// Builders for policy tests: request contexts with defaults, and sets from plain documents.
import { compilePolicies } from '../../src/policy/compile.js';
import type { PolicySet } from '../../src/policy/compile.js';
import { Facts } from '../../src/policy/facts.js';
import type { Action, PolicyDocument, Principal, RequestContext, SshChannel } from '../../src/policy/types.js';

export const joe: Principal = { user: { id: 'u-joe', email: 'joe@corp.example', groups: ['support', 'staff'] } };
export const ann: Principal = { user: { id: 'u-ann', email: 'ann@partner.example', groups: [] } };
export const billing: Principal = { service: { id: 'spiffe://corp.example/ns/prod/billing' } };
export const anonymous: Principal = {};

/** A Monday, 10:00 UTC (11:00 in Amsterdam). */
export const MONDAY_10Z = new Date('2025-03-24T10:00:00Z');

export interface CtxOptions {
  socket?: string;
  namespace?: string;
  tags?: Record<string, string>;
  principal?: Principal;
  ip?: string;
  country?: string;
  at?: Date | string;
  action?: Action;
}

export function ctx(o: CtxOptions = {}): RequestContext {
  const base = {
    socket: { name: o.socket ?? 'web', namespace: o.namespace ?? '', tags: o.tags ?? {} },
    principal: o.principal ?? joe,
    clientIp: o.ip ?? '10.1.2.3',
    at: o.at === undefined ? MONDAY_10Z : new Date(o.at),
    action: o.action ?? { protocol: 'http', method: 'GET', path: '/' },
  };
  return o.country === undefined ? base : { ...base, country: o.country };
}

export function facts(o: CtxOptions = {}): Facts {
  const c = ctx(o);
  return new Facts(c, c.action);
}

export function setOf(...documents: PolicyDocument[]): PolicySet {
  return compilePolicies(documents.map((document, i) => ({ document, version: i + 1 })));
}

export const http = (method: string, path: string): Action => ({ protocol: 'http', method, path });
export const ssh = (login?: string, channel?: SshChannel, command?: string): Action =>
  ({ protocol: 'ssh', ...(login === undefined ? {} : { login }), ...(channel === undefined ? {} : { channel }), ...(command === undefined ? {} : { command }) });
