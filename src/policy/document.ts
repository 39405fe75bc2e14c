// Policy documents as people write them (YAML or JSON): the strict schema, normalization
// (emails and domains lower-cased, countries and methods upper-cased, time zones canonical),
// and errors as one line naming the field: `rules[1].when.time: expected HH:MM-HH:MM, got "8-18"`.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PosternError, errorMessage } from '../errors.js';
import { isCountryCode } from './countries.js';
import { parseCidr } from '../ip.js';
import { SLUG, SOCKET_NAME, WEEKDAYS, isDomain, isEmail, isNamespace, parseDuration, parseInstant, parseTimeRange } from './syntax.js';
import { canonicalTimeZone } from './tz.js';
import type { PolicyDocument, Weekday } from './types.js';

const show = (value: unknown) => JSON.stringify(value);

/** A string checked (and normalized) by `check`, which returns the value or a problem sentence. */
function text<T extends string = string>(check: (value: string) => { ok: T } | { problem: string }) {
  return z.string().transform((raw, ctx) => {
    const result = check(raw);
    if ('ok' in result) return result.ok;
    ctx.addIssue({ code: 'custom', message: result.problem });
    return z.NEVER;
  });
}

/** `ok` with the (normalized) value, or the problem quoting the value as written. */
const verdict = (ok: boolean, raw: string, problem: string, normalized = raw) => (ok ? { ok: normalized } : { problem: `${show(raw)} ${problem}` });
const list = <T extends z.ZodType>(item: T) => z.array(item).min(1).optional();

const slug = text((v) => verdict(SLUG.test(v), v, 'is not a valid name: a-z, 0-9, ".", "_" and "-", starting with a letter or digit, at most 63 characters'));
const namespace = text((v) => verdict(isNamespace(v), v, 'is not a namespace: names of a-z, 0-9, ".", "_" and "-" separated by "/", such as corp/support'));
const socketName = text((v) => verdict(SOCKET_NAME.test(v), v, 'is not a socket name (a DNS label: a-z, 0-9 and "-")'));
const email = text((v) => verdict(isEmail(v.trim()), v, 'is not an email address', v.trim().toLowerCase()));
const domain = text((v) => (v.startsWith('@') ? { problem: `${show(v)} is not a domain (leave out the "@")` } : verdict(isDomain(v.trim().toLowerCase()), v, 'is not a domain', v.trim().toLowerCase())));
const nonEmpty = text((v) => verdict(v.trim() !== '', v, 'must not be empty'));
const service = text((v) => {
  const star = v.indexOf('*');
  return verdict(v.trim() !== '' && (star === -1 || (star === v.length - 1 && v.endsWith('/*'))), v, 'is not a service identity (a "*" may only end it, as "/*")');
});
const cidr = text((v) => verdict(parseCidr(v) !== undefined, v, 'is not an IP address or CIDR'));
const country = text((v) => {
  const code = v.toUpperCase();
  if (code === 'UK') return { problem: '"UK" is not an ISO 3166-1 code: the United Kingdom is GB' };
  return verdict(isCountryCode(code), v, 'is not a country code (ISO 3166-1 alpha-2, or EU)', code);
});
const weekday = text<Weekday>((v) => {
  const day = v.toLowerCase() as Weekday;
  return WEEKDAYS.includes(day) ? { ok: day } : { problem: `expected one of ${WEEKDAYS.slice(1).join(', ')}, sun, got ${show(v)}` };
});
const timeRange = text((v) => (parseTimeRange(v) ? { ok: v } : { problem: `expected HH:MM-HH:MM, got ${show(v)}` }));
const timeZone = text((v) => {
  const canonical = canonicalTimeZone(v);
  return canonical ? { ok: canonical } : { problem: `${show(v)} is not an IANA time zone (such as Europe/Amsterdam or UTC)` };
});
const instant = text((v) => verdict(parseInstant(v, 'UTC') !== undefined, v, 'is not an ISO 8601 date or date-time (2025-06-01, 2025-06-01T08:00, 2025-06-01T08:00:00Z)'));
const duration = text((v) => verdict(parseDuration(v) !== undefined, v, 'is not a duration such as 90s, 30m, 2h or 1d'));
const method = text((v) => verdict(/^[A-Z][A-Z-]*$/.test(v.toUpperCase()), v, 'is not an HTTP method', v.toUpperCase()));
const pathGlob = text((v) => {
  if (!v.startsWith('/')) return { problem: `${show(v)} must start with "/"` };
  return verdict(!/[?#\s]/.test(v), v, 'must be a path without query, fragment or spaces');
});

/** `*` is any run of characters; the glob covers the whole command line as the client sent it. */
const commandGlob = text((v) => {
  if (v.trim() === '') return { problem: `${show(v)} must not be empty` };
  return verdict(!/[\u0000-\u001f\u007f]/.test(v), v, 'must be one line without control characters');
});
/**
 * `true`/`false`, or the other form, whose own problems keep naming the item
 * (`exec[1]: …`): a union would only say that neither form fits.
 */
function booleanOr<T extends z.ZodType>(other: T, expected: string) {
  return z.unknown().transform((value, ctx): boolean | z.output<T> => {
    if (typeof value === 'boolean') return value;
    if (typeof value !== 'object' || value === null) {
      ctx.addIssue({ code: 'custom', message: `expected true, false or ${expected}, got ${describeInput(value)}` });
      return z.NEVER;
    }
    const result = other.safeParse(value, { error: errorMap });
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  });
}
const forwardingDirections = z.strictObject({ local: z.boolean().optional(), remote: z.boolean().optional() })
  .refine((d) => d.local !== undefined || d.remote !== undefined, 'name local or remote (or write true or false for both)');

const labelName = z.string().regex(/^[a-z][a-z0-9_.-]{0,99}$/i, 'is not a label name (letters, digits, ".", "_" and "-", starting with a letter)');
const labelValues = z.union([nonEmpty, z.array(nonEmpty).min(1)]);
const serviceLabels = z.record(labelName, labelValues).refine((l) => Object.keys(l).length > 0, 'name at least one label, such as { app: payroll }');
const onBehalfOf = z.strictObject({ email: list(email), domain: list(domain), group: list(nonEmpty) })
  .refine((o) => o.email || o.domain || o.group, 'name the people: email, domain or group');
const who = z.strictObject({
  email: list(email), domain: list(domain), group: list(nonEmpty), service: z.union([z.array(service).min(1), serviceLabels]).optional(), spiffe: list(service),
  on_behalf_of: onBehalfOf.optional(),
}).refine((w) => !w.on_behalf_of || w.service || w.spiffe, { path: ['on_behalf_of'], message: 'goes with service or spiffe: the service that acts for these people' });
const where = z.strictObject({ ip: list(cidr), country: list(country), country_not: list(country) });
const whenBlock = z.strictObject({ after: instant.optional(), before: instant.optional(), weekdays: list(weekday), time: timeRange.optional(), tz: timeZone.optional() })
  .superRefine((w, ctx) => {
    const tz = w.tz ?? 'UTC';
    if (w.after !== undefined && w.before !== undefined && parseInstant(w.before, tz)! <= parseInstant(w.after, tz)!) {
      ctx.addIssue({ code: 'custom', path: ['before'], message: `${show(w.before)} must be later than after (${show(w.after)})` });
    }
  });
const what = z.strictObject({
  http: z.strictObject({ methods: list(method), paths: list(pathGlob), case_insensitive: z.boolean().optional() }).optional(),
  ssh: z.strictObject({
    logins: list(text((v) => verdict(/^[^\s,]+$/.test(v), v, 'is not a login name'))),
    shell: z.boolean().optional(),
    exec: booleanOr(z.array(commandGlob).min(1), 'a list of command globs').optional(),
    sftp: z.boolean().optional(),
    scp: z.boolean().optional(),
    port_forwarding: booleanOr(forwardingDirections, '{ local, remote }').optional(),
    agent_forwarding: z.boolean().optional(),
    x11: z.boolean().optional(),
    max_session: duration.optional(),
  }).optional(),
  tls: z.strictObject({ connect: z.boolean().optional() }).optional(),
  database: z.strictObject({ names: list(nonEmpty), users: list(nonEmpty), read_only: z.boolean().optional() }).optional(),
}).refine((w) => w.http || w.ssh || w.tls || w.database, 'needs at least one of http, ssh, tls, database');

/** Settings that grant or restrict inside an allow; on a deny rule they would read backwards. */
const ALLOW_ONLY: readonly (readonly ['ssh' | 'tls' | 'database', string, string])[] = [
  ['ssh', 'shell', 'channel flags go on allow rules (shell: false there forbids it)'],
  ['ssh', 'exec', 'channel flags go on allow rules (exec: false there forbids it)'],
  ['ssh', 'sftp', 'channel flags go on allow rules (sftp: false there forbids it)'],
  ['ssh', 'scp', 'channel flags go on allow rules (scp: false there forbids it)'],
  ['ssh', 'port_forwarding', 'channel flags go on allow rules (port_forwarding: false there forbids it)'],
  ['ssh', 'agent_forwarding', 'channel flags go on allow rules (agent_forwarding: false there forbids it)'],
  ['ssh', 'x11', 'channel flags go on allow rules (x11: false there forbids it)'],
  ['ssh', 'max_session', 'only allow rules limit sessions'],
  ['tls', 'connect', 'only allow rules set connect (a deny rule with tls: {} refuses connections)'],
  ['database', 'read_only', 'only allow rules are read-only (a deny rule with database: {} refuses the database)'],
  ['database', 'users', 'only allow rules map people to roles (a deny rule with database: {} refuses the database)'],
];

const rule = z.strictObject({
  name: slug.optional(),
  effect: z.enum(['allow', 'deny']),
  who: who.optional(),
  where: where.optional(),
  when: whenBlock.optional(),
  what: what.optional(),
}).superRefine((r, ctx) => {
  if (r.effect !== 'deny' || !r.what) return;
  for (const [protocol, field, problem] of ALLOW_ONLY) {
    const block: Record<string, unknown> | undefined = r.what[protocol];
    if (block?.[field] !== undefined) ctx.addIssue({ code: 'custom', path: ['what', protocol, field], message: problem });
  }
});

const documentSchema = z.strictObject({
  name: slug,
  namespace: namespace.optional(),
  description: z.string().optional(),
  sockets: list(socketName),
  services: list(slug),
  tags: z.record(z.string().min(1), z.string()).optional(),
  mode: z.enum(['enforce', 'observe']).optional(),
  alarm_until: instant.optional(),
  rules: z.array(rule).min(1),
}).superRefine((d, ctx) => {
  const by = (['sockets', 'services', 'tags'] as const).filter((k) => d[k] !== undefined);
  if (by.length > 1) ctx.addIssue({ code: 'custom', path: [by[1]!], message: `a policy attaches by one of sockets, services or tags, not ${by.join(' and ')}` });
  if (d.tags && Object.keys(d.tags).length === 0) ctx.addIssue({ code: 'custom', path: ['tags'], message: 'must name at least one tag (leave tags out to cover the whole namespace)' });
  const seen = new Map<string, number>();
  d.rules.forEach((r, i) => {
    if (r.name === undefined) return;
    const first = seen.get(r.name);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `${show(r.name)} is already the name of rules[${first}]` });
    else seen.set(r.name, i);
  });
});

function describeInput(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null || typeof input !== 'object') return show(input);
  return Array.isArray(input) ? 'a list' : 'a mapping';
}

const EXPECTED: Record<string, string> = { array: 'a list', object: 'a mapping', record: 'a mapping', string: 'a string', boolean: 'true or false' };

/** Messages for zod's own checks (ours carry their message). */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': return issue.input === undefined ? 'is required' : `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeInput(issue.input)}`;
    case 'too_small': return 'must not be empty';
    case 'invalid_value': return `expected ${issue.values.map(String).join(' or ')}, got ${show(issue.input)}`;
    default: return undefined;
  }
};

function pathText(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

/** One problem of a document: where (`path`, `field` as people write it) and what. */
export interface PolicyIssue {
  readonly path: readonly (string | number)[];
  /** `rules[1].when.time`, or '' for the document itself. */
  readonly field: string;
  readonly message: string;
  /** The problem is the field's name (an unknown field), not its value. */
  readonly key: boolean;
}

function issuesOf(issue: z.core.$ZodIssue): PolicyIssue[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => ({ path: [...path, k], field: pathText([...path, k]), message: 'unknown field', key: true }));
  return [{ path, field: pathText(path), message: issue.message, key: false }];
}

export function issueLine(issue: Pick<PolicyIssue, 'field' | 'message'>): string {
  return issue.field ? `${issue.field}: ${issue.message}` : `policy document: ${issue.message}`;
}

/** The document checked and normalized, or every problem found in it. */
export function policyIssues(value: unknown): { document: PolicyDocument } | { issues: PolicyIssue[] } {
  const result = documentSchema.safeParse(value, { error: errorMap });
  return result.success ? { document: result.data } : { issues: result.error.issues.flatMap(issuesOf) };
}

/** A parsed document checked and normalized; throws `bad_request` with one line naming the field. */
export function validatePolicyDocument(value: unknown): PolicyDocument {
  const result = policyIssues(value);
  if ('issues' in result) throw new PosternError('bad_request', issueLine(result.issues[0]!));
  return result.document;
}

function yamlPosition(cause: unknown): { line: number; column: number } | undefined {
  const at = (cause as { linePos?: { line: number; col: number }[] }).linePos?.[0];
  return at && { line: at.line, column: at.col };
}

/** A YAML or JSON syntax error as one sentence, with its line (and column, when the parser says). */
export function syntaxProblem(cause: unknown, source: string, format: 'yaml' | 'json'): { line?: number; column?: number; message: string } {
  const message = errorMessage(cause);
  if (format === 'yaml') {
    return { ...yamlPosition(cause), message: message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') };
  }
  // V8 gives either a position or a quoted excerpt (which may span lines); the YAML parser,
  // reading the same text, finds the line when V8 does not say.
  const position = /at position (\d+)/.exec(message);
  const first = message.replace(/, (?:\.\.\.)?"[\s\S]*" is not valid JSON$/, '').replace(/ in JSON at position \d+[\s\S]*$/, '').split('\n')[0]!;
  if (position) {
    const before = source.slice(0, Number(position[1])).split('\n');
    return { line: before.length, column: before[before.length - 1]!.length + 1, message: first };
  }
  try {
    parseYaml(source);
  } catch (yamlCause) {
    return { ...yamlPosition(yamlCause), message: first };
  }
  return { message: first };
}

/** `line 3: …` for YAML and JSON syntax errors. */
function syntaxLine(cause: unknown, source: string, format: 'yaml' | 'json'): string {
  const problem = syntaxProblem(cause, source, format);
  if (problem.line !== undefined) return `line ${problem.line}: ${problem.message}`;
  return `${format === 'yaml' ? 'YAML' : 'JSON'}: ${problem.message}`;
}

/** `json` when the text opens with `{` (after white space), else `yaml`. */
export function sourceFormat(source: string): 'yaml' | 'json' {
  return source.trimStart().startsWith('{') ? 'json' : 'yaml';
}

/** YAML or JSON (detected by a leading `{` when `format` is not given). */
export function parsePolicyDocument(source: string, format?: 'yaml' | 'json'): PolicyDocument {
  const fmt = format ?? sourceFormat(source);
  let raw: unknown;
  try {
    raw = fmt === 'json' ? JSON.parse(source) : parseYaml(source);
  } catch (cause) {
    throw new PosternError('bad_request', syntaxLine(cause, source, fmt), { cause });
  }
  return validatePolicyDocument(raw);
}
