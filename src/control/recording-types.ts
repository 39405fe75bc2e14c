// What the recordings API answers, as zod schemas (the routes validate against them and the
// OpenAPI document shows them) and their types, which the dashboard imports with `import type`.
// No server imports here: the web build reads this file.
import { z } from 'zod';

export const recordingView = z.object({
  /** `rec_…` */
  id: z.string(),
  connectionId: z.string(),
  sessionId: z.string(),
  socket: z.string(),
  email: z.string(),
  login: z.string(),
  kind: z.enum(['shell', 'exec', 'database']),
  /** The exec's command line; '' for a shell. */
  command: z.string(),
  title: z.string(),
  width: z.number(),
  height: z.number(),
  term: z.string(),
  startedAt: z.string(),
  /** null while the session runs (or when its edge died before it ended). */
  endedAt: z.string().nullable(),
  exitStatus: z.number().nullable(),
  bytes: z.number(),
  truncated: z.boolean(),
  endReason: z.string(),
  updatedAt: z.string(),
});

export const recordingList = z.object({
  recordings: z.array(recordingView),
  /** Present when there may be more: pass it as `?before=` for the next (older) page. */
  next: z.string().optional(),
});

export const recordingMatch = z.object({
  recording: recordingView,
  /** Seconds since the start of the recording at which the matching text began. */
  time: z.number(),
  stream: z.enum(['input', 'output']),
  /** The text around the match, as shown (escapes removed). */
  excerpt: z.string(),
});

export const recordingSearch = z.object({
  matches: z.array(recordingMatch),
  /** How many recordings (newest first, after the filters) were searched. */
  scanned: z.number(),
});

/** `?format=` of `/recordings/:id/cast`: the asciicast file, or server-sent events (one cast line per message, then a `done` event) for a browser's EventSource. */
export const CAST_FORMATS = ['asciicast', 'sse'] as const;

export type RecordingView = z.infer<typeof recordingView>;
export type RecordingList = z.infer<typeof recordingList>;
export type RecordingMatch = z.infer<typeof recordingMatch>;
export type RecordingSearch = z.infer<typeof recordingSearch>;
export type CastFormat = (typeof CAST_FORMATS)[number];
