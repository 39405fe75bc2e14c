// The policy API's payloads as zod schemas: the routes validate with them and the OpenAPI
// document shows them; the dashboard's editor, history and test panel import the types with
// `import type`. No server imports here: the web build reads this file.
import { z } from 'zod';

/** Apply or validate: the file's text (YAML or JSON, parsed on the server so errors carry lines) or an object. */
export const policyApplyBody = z.object({
  text: z.string().min(1).max(256 * 1024).optional(),
  document: z.record(z.string(), z.unknown()).optional(),
}).strict().refine((b) => (b.text === undefined) !== (b.document === undefined), 'give exactly one of text or document');
export type PolicyApplyBody = z.input<typeof policyApplyBody>;

/** Check a source text as the editor shows it: every problem, each on its line. */
export const policyCheckBody = z.object({ text: z.string().max(256 * 1024) }).strict();

export const policySourceError = z.object({
  /** 1-based line and column in the text sent. */
  line: z.number().int(),
  column: z.number().int(),
  /** The field as written (`rules[0].effect`); '' for a syntax error. */
  path: z.string(),
  message: z.string(),
});
export type PolicySourceError = z.infer<typeof policySourceError>;

export const policyCheckAnswer = z.object({
  valid: z.boolean(),
  errors: z.array(policySourceError),
  /** The normalized document when valid. */
  document: z.record(z.string(), z.unknown()).nullable(),
  /** `namespace/name` of the document when it has a valid name, so the editor can tell a rename. */
  ref: z.string().nullable(),
});
export type PolicyCheckAnswer = z.infer<typeof policyCheckAnswer>;

const coverage = z.object({
  covered: z.array(z.string()).readonly(),
  outside: z.array(z.object({ name: z.string(), namespace: z.string() })).readonly(),
  unknown: z.array(z.string()).readonly(),
});

export const policyView = z.object({
  id: z.string(),
  ref: z.string(),
  namespace: z.string(),
  name: z.string(),
  version: z.number().int(),
  document: z.record(z.string(), z.unknown()),
  /** The stored document as YAML (the store keeps JSON: comments of the applied text are not kept). */
  yaml: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  coverage,
});
export type PolicyView = z.infer<typeof policyView>;

export const policyListAnswer = z.object({ policies: z.array(policyView), next: z.string().nullable() });
export type PolicyListAnswer = z.infer<typeof policyListAnswer>;

export const pageQuery = z.object({
  cursor: z.string().max(300).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
}).strict();

/** Versions oldest first (the CLI's `policy history`) or newest first (the editor's). */
export const policyVersionsQuery = z.object({
  order: z.enum(['asc', 'desc']).optional(),
  /** A version number: the page starts after it in `order`. */
  cursor: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
}).strict();
export type PolicyVersionsQuery = z.input<typeof policyVersionsQuery>;

export const policyVersionView = z.object({
  version: z.number().int(),
  /** Who made the change (an email, `token:<name>`) and when. */
  author: z.string(),
  createdAt: z.string(),
  /** null for the version that deleted the policy. */
  document: z.record(z.string(), z.unknown()).nullable(),
  yaml: z.string().nullable(),
});
export type PolicyVersionView = z.infer<typeof policyVersionView>;

export const policyVersionsAnswer = z.object({ versions: z.array(policyVersionView), next: z.number().int().nullable() });
export type PolicyVersionsAnswer = z.infer<typeof policyVersionsAnswer>;

export const policyTestBody = z.object({
  socket: z.string().min(1).max(63),
  email: z.string().email().transform((e) => e.toLowerCase()),
  /** Default: the user's own groups. */
  groups: z.array(z.string().max(256)).max(500).optional(),
  ip: z.string().min(1).max(64),
  /** Default: looked up from the IP. */
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
export type PolicyTestBody = z.input<typeof policyTestBody>;

export const policyRuleExplanation = z.object({
  policy: z.string(),
  namespace: z.string(),
  rule: z.string(),
  effect: z.enum(['allow', 'deny']),
  /** `matched`, or the reason it did not (`who-group`, `when-time`…). */
  outcome: z.string(),
  detail: z.string(),
  /** `namespace/policy#rule`, as decisions and 403 pages name it. */
  label: z.string(),
});
export type PolicyRuleExplanation = z.infer<typeof policyRuleExplanation>;

export const policyTestAnswer = z.object({
  effect: z.enum(['allow', 'deny']),
  reason: z.string(),
  summary: z.string(),
  /** The deciding rule's label. */
  rule: z.string().nullable(),
  recheckAt: z.string().nullable(),
  maxSessionMs: z.number().optional(),
  readOnly: z.boolean().optional(),
  rules: z.array(policyRuleExplanation),
  context: z.record(z.string(), z.unknown()),
  knownUser: z.boolean(),
  /** The groups the decision used (given, or the user's own). */
  groups: z.array(z.string()),
  /** The explanation exactly as `postern policy test` prints it, one line each. */
  lines: z.array(z.string()),
});
export type PolicyTestAnswer = z.infer<typeof policyTestAnswer>;
