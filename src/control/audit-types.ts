// What the audit API serves the dashboard, as zod schemas (the routes validate and document with
// them) and their TypeScript types, which the web app imports with `import type`. Event type
// names come from src/reporting's one vocabulary. No server imports here: the web build reads this file.
import { z } from 'zod';
import type { AuditEventType } from '../reporting/events.js';

/** The filters every audit read shares: the page, its export and its live tail select the same events. */
export const auditFilterQuery = z.object({
  user: z.string().max(254).optional(),
  socket: z.string().max(63).optional(),
  /** An audit event type (`access.denied`, `http.request`…); the route checks it against the vocabulary. */
  type: z.string().max(64).optional(),
  decision: z.enum(['allow', 'deny']).optional(),
  /** ISO 8601 bounds on the event time: since inclusive, until exclusive. */
  since: z.string().max(40).optional(),
  until: z.string().max(40).optional(),
  /** Free text: every word must start a word of the reason, actor, socket or details. */
  q: z.string().max(200).optional(),
});

export type AuditFilterQuery = z.infer<typeof auditFilterQuery>;

export const auditEventView = z.object({
  id: z.number().int(),
  type: z.custom<AuditEventType>((value) => typeof value === 'string'),
  at: z.string(),
  actor: z.string(),
  socket: z.string(),
  clientIp: z.string(),
  country: z.string(),
  /** 'allow' | 'deny' | '' (not a decision). */
  decision: z.string(),
  rule: z.string(),
  reason: z.string(),
  connectionId: z.string(),
  sessionId: z.string(),
  details: z.record(z.string(), z.unknown()),
});

export type AuditEventView = z.infer<typeof auditEventView>;

export const auditPage = z.object({
  events: z.array(auditEventView),
  /** With `order=desc` or `before`: the `before` of the next (older) page, null when this was the last. */
  nextBefore: z.number().int().nullable().optional(),
});

export type AuditPage = z.infer<typeof auditPage>;

export const auditTypesView = z.object({ types: z.array(z.custom<AuditEventType>((value) => typeof value === 'string')) });

export type AuditTypesView = z.infer<typeof auditTypesView>;

/** The export formats of GET /api/v1/audit/export. */
export type AuditExportFormat = 'jsonl' | 'csv';
