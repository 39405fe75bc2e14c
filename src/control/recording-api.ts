// Recordings over the API: list and show them, serve one as an asciicast file streamed chunk by
// chunk (never loaded whole), follow one still in progress (`?follow=1`, for `sessions watch`),
// and search what was typed or shown. Reading recordings needs the `recordings:read` scope.
// `?format=sse` serves the same lines as server-sent events, for the dashboard's player.

import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { RecordingRecord, Store } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { parseWith } from './routes.js';
import { PosternError } from '../errors.js';
import { castHeaderLine, parseEventLine, CastSearch } from '../reporting/index.js';
import type { CastMatch } from '../reporting/index.js';
import { CAST_FORMATS, recordingList, recordingSearch, recordingView } from './recording-types.js';
import type { CastFormat } from './recording-types.js';

export interface RecordingApiOptions {
  store: Store;
  now?: () => Date;
  /** How often a follow looks for new chunks (default 250 ms). */
  followPollMs?: number;
  /** A live recording not written to for this long is from an edge that died: a follow stops (default 60 s). */
  staleAfterMs?: number;
}

const gunzipAsync = promisify(gunzip);
const PAGE = 100;
/** Search reads at most this many recordings per request (newest first). */
const SEARCH_SCAN = 200;

const filters = {
  user: z.string().max(254).optional(),
  socket: z.string().max(63).optional(),
  since: z.string().max(40).optional(),
  until: z.string().max(40).optional(),
};
const listQuery = z.object({
  ...filters,
  connection: z.string().max(100).optional(),
  live: z.enum(['true', 'false']).optional(),
  before: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
}).strict();
const searchQuery = z.object({ ...filters, q: z.string().min(1).max(200), limit: z.coerce.number().int().min(1).max(100).optional() }).strict();
const castQuery = z.object({ follow: z.enum(['1', 'true', '0', 'false']).optional(), format: z.enum(CAST_FORMATS).optional() }).strict();
const idParams = z.object({ id: z.string().min(1).max(100) });

function filterOf(query: { user?: string | undefined; socket?: string | undefined; since?: string | undefined; until?: string | undefined }) {
  return {
    ...(query.user !== undefined ? { email: query.user } : {}),
    ...(query.socket !== undefined ? { socket: query.socket } : {}),
    ...(query.since !== undefined ? { since: query.since } : {}),
    ...(query.until !== undefined ? { until: query.until } : {}),
  };
}

export function registerRecordingApi(routes: RouteTable, options: RecordingApiOptions): void {
  const { store } = options;
  const found = async (id: string): Promise<RecordingRecord> => {
    const recording = await store.recordings.get(id);
    if (!recording) throw new PosternError('not_found', `recording "${id}" does not exist`);
    return recording;
  };

  routes.add({ method: 'GET', url: '/api/v1/recordings', summary: 'Recorded sessions, newest first (?user, socket, since, until, connection, live, before, limit)', auth: 'recordings:read', response: recordingList,
    handler: async ({ request }) => {
      const query = parseWith(listQuery, request.query, 'query');
      const limit = query.limit ?? 50;
      const recordings = await store.recordings.list({
        ...filterOf(query), limit,
        ...(query.connection !== undefined ? { connectionId: query.connection } : {}),
        ...(query.live !== undefined ? { live: query.live === 'true' } : {}),
        ...(query.before !== undefined ? { before: query.before } : {}),
      });
      return { recordings, ...(recordings.length === limit ? { next: recordings.at(-1)!.id } : {}) };
    } });
  routes.add({ method: 'GET', url: '/api/v1/recordings/search', summary: 'Recordings whose input or output contains ?q, with the moment of the first match (?user, socket, since, until, limit)', auth: 'recordings:read', response: recordingSearch,
    handler: async ({ request }) => {
      const query = parseWith(searchQuery, request.query, 'query');
      const candidates = await store.recordings.list({ ...filterOf(query), limit: SEARCH_SCAN });
      const matches: (CastMatch & { recording: RecordingRecord })[] = [];
      for (const recording of candidates) {
        const match = await firstMatch(store, recording.id, query.q);
        if (match) matches.push({ recording, ...match });
        if (matches.length >= (query.limit ?? 20)) break;
      }
      return { matches, scanned: candidates.length };
    } });
  routes.add({ method: 'GET', url: '/api/v1/recordings/:id', summary: 'One recording\'s details', auth: 'recordings:read', params: idParams, response: recordingView,
    handler: async ({ params }) => found(params.id) });
  routes.add({ method: 'GET', url: '/api/v1/recordings/:id/cast', summary: 'The recording as an asciicast v2 file, streamed (?follow=1: keep streaming until a live recording ends; ?format=sse: as server-sent events, one line per message, then a done event)', auth: 'recordings:read', params: idParams,
    handler: async ({ params, request, reply }) => {
      const query = parseWith(castQuery, request.query, 'query');
      const recording = await found(params.id);
      await streamCast(request, reply, recording, { follow: query.follow === '1' || query.follow === 'true', format: query.format ?? 'asciicast' }, options);
    } });
}

/** The first match of `q` in a recording, reading it one page of chunks at a time. */
async function firstMatch(store: Store, id: string, q: string): Promise<CastMatch | undefined> {
  const search = new CastSearch(q);
  for (let after = -1; ;) {
    const chunks = await store.recordings.chunks(id, after, PAGE);
    for (const chunk of chunks) {
      for (const line of (await eventLines(chunk.data))) {
        const event = parseEventLine(line);
        const match = event && search.feed(event);
        if (match) return match;
      }
      after = chunk.seq;
    }
    if (chunks.length < PAGE) return undefined;
  }
}

async function eventLines(data: Buffer): Promise<string[]> {
  // A damaged chunk reads as nothing rather than failing the whole recording.
  const text = await gunzipAsync(data).then((b) => b.toString('utf8'), () => '');
  return text.split('\n').filter((line) => line !== '');
}

/** Cast lines as the format frames them: the file's own lines, or one server-sent event each. */
function framer(format: CastFormat): (lines: readonly string[]) => string {
  return format === 'sse' ? (lines) => lines.map((line) => `data: ${line}\n\n`).join('') : (lines) => `${lines.join('\n')}\n`;
}

/** Header, then every chunk in order; with `follow`, new chunks as they are stored until the recording ends. */
async function streamCast(request: FastifyRequest, reply: FastifyReply, recording: RecordingRecord, how: { follow: boolean; format: CastFormat }, options: RecordingApiOptions): Promise<void> {
  const { follow, format } = how;
  const frame = framer(format);
  const { store } = options;
  const now = options.now ?? (() => new Date());
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    'content-type': format === 'sse' ? 'text/event-stream' : 'application/x-asciicast',
    'cache-control': 'no-store',
    ...(follow || format === 'sse' ? {} : { 'content-disposition': `attachment; filename="${recording.id}.cast"` }),
  });
  let open = true;
  const closed = () => (open = false);
  request.raw.socket.once('close', closed);
  out.once('close', closed);
  const write = async (text: string) => {
    if (!out.write(text)) await new Promise<void>((resolve) => {
      out.once('drain', resolve);
      out.once('close', resolve);
    });
  };
  try {
    await write(frame([castHeaderLine(recording).trimEnd()]));
    let after = -1;
    let current = recording;
    while (open) {
      const chunks = await store.recordings.chunks(current.id, after, PAGE);
      for (const chunk of chunks) {
        const lines = await eventLines(chunk.data);
        if (lines.length > 0) await write(frame(lines));
        after = chunk.seq;
        if (!open) break;
      }
      if (chunks.length === PAGE) continue;
      if (!follow || current.endedAt !== null) break;
      await new Promise((resolve) => setTimeout(resolve, options.followPollMs ?? 250));
      const latest = await store.recordings.get(current.id);
      if (!latest) break;
      const stale = latest.endedAt === null && now().getTime() - Date.parse(latest.updatedAt) > (options.staleAfterMs ?? 60_000);
      // An ended recording is read once more: chunks written just before the end are not missed.
      current = stale ? { ...latest, endedAt: latest.updatedAt } : latest;
    }
    // An EventSource reconnects (and would replay from the start) unless told the stream is over.
    if (format === 'sse' && open) await write('event: done\ndata: end\n\n');
  } catch {
    // The store failed mid-stream: the client sees a cast that stops; nothing more can be said now.
  }
  out.end();
}
