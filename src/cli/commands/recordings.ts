// `postern recordings …` and `postern sessions watch`: list recorded sessions, replay one in the
// terminal with its real timing (faster, idle pauses cut), export it as an asciicast file for
// asciinema, search what was typed or shown, and follow a live session's screen read-only.
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import { PosternError } from '../../errors.js';
import { parseEventLine, replayDelayMs } from '../../reporting/index.js';
import type { ReplayTiming } from '../../reporting/index.js';
import type { RecordingRecord } from '../../store/index.js';

const CAST = 'application/x-asciicast';

/** `83.25` → `1:23.2`, the moment in a recording as people read it. */
export function formatOffset(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  const rest = (seconds - minutes * 60).toFixed(1).padStart(4, '0');
  return `${minutes}:${rest}`;
}

function positive(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new PosternError('bad_request', `${flag} must be a positive number`);
  return number;
}

function queryOf(values: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined) params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : '';
}

function describeRecording(r: RecordingRecord): Record<string, unknown> {
  const seconds = r.endedAt === null ? undefined : (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000;
  return {
    ...r,
    what: r.kind === 'shell' ? 'shell' : `${r.kind}: ${r.command}`,
    duration: seconds === undefined ? 'live' : formatOffset(seconds),
    truncated: r.truncated ? 'yes' : '',
  };
}

/** The cast's lines as they arrive (the body is read at the caller's pace). */
async function* castLines(ctx: CliContext, id: string, follow: boolean): AsyncGenerator<string> {
  const body = await ctx.client().openStream(`/api/v1/recordings/${encodeURIComponent(id)}/cast${follow ? '?follow=1' : ''}`, CAST);
  yield* createInterface({ input: body, crlfDelay: Infinity });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Shows what the terminal showed, waiting between events as the timing says. */
export async function play(lines: AsyncIterable<string>, timing: ReplayTiming, write: (text: string) => void): Promise<void> {
  let previous = 0;
  for await (const line of lines) {
    const event = parseEventLine(line);
    if (!event || event.code !== 'o') continue;
    await sleep(replayDelayMs(Math.max(0, event.time - previous), timing));
    previous = Math.max(previous, event.time);
    write(event.data);
  }
}

export function registerRecordings(program: Command, context: () => CliContext): void {
  const recordings = program.command('recordings').description('recorded terminal sessions: list, replay, export, search');
  recordings.command('ls')
    .description('recorded sessions, newest first')
    .option('--user <email>', 'only this person\'s')
    .option('--socket <name>', 'only on this socket')
    .option('--since <time>', 'started at or after (ISO 8601)')
    .option('--until <time>', 'started before (ISO 8601)')
    .option('--live', 'only sessions still running')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (options: { user?: string; socket?: string; since?: string; until?: string; live?: boolean; limit: string }) => {
      const ctx = context();
      const { recordings: rows } = await ctx.client().get<{ recordings: RecordingRecord[] }>(`/api/v1/recordings${queryOf({
        user: options.user, socket: options.socket, since: options.since, until: options.until, limit: options.limit, live: options.live ? 'true' : undefined,
      })}`);
      if (ctx.json) return printJson(rows);
      printTable(rows.map(describeRecording), ['id', 'startedAt', 'duration', 'email', 'login', 'socket', 'what', 'bytes', 'truncated', 'connectionId']);
    });
  recordings.command('play <id>')
    .description('replay a recording in this terminal with its real timing')
    .option('--speed <factor>', 'play faster (2) or slower (0.5)', '1')
    .option('--idle-limit <seconds>', 'shorten pauses longer than this')
    .action(async (id: string, options: { speed: string; idleLimit?: string }) => {
      const speed = positive('--speed', options.speed) ?? 1;
      const idleLimit = positive('--idle-limit', options.idleLimit);
      await play(castLines(context(), id, false), { speed, ...(idleLimit !== undefined ? { idleLimit } : {}) }, (text) => process.stdout.write(text));
    });
  recordings.command('export <id>')
    .description('write the recording as an asciicast v2 file to stdout (asciinema play / cat read it)')
    .action(async (id: string) => {
      const body = await context().client().openStream(`/api/v1/recordings/${encodeURIComponent(id)}/cast`, CAST);
      await pipeline(body, process.stdout, { end: false });
    });
  recordings.command('search <text>')
    .description('sessions whose input or output contains the text (case ignored), and the moment it appears')
    .option('--user <email>', 'only this person\'s')
    .option('--socket <name>', 'only on this socket')
    .option('--since <time>', 'started at or after (ISO 8601)')
    .option('--limit <n>', 'at most this many sessions', '20')
    .action(async (text: string, options: { user?: string; socket?: string; since?: string; limit: string }) => {
      const ctx = context();
      const { matches } = await ctx.client().get<{ matches: { recording: RecordingRecord; time: number; stream: string; excerpt: string }[] }>(
        `/api/v1/recordings/search${queryOf({ q: text, user: options.user, socket: options.socket, since: options.since, limit: options.limit })}`);
      if (ctx.json) return printJson(matches);
      printTable(matches.map((m) => ({ ...describeRecording(m.recording), at: formatOffset(m.time), in: m.stream, excerpt: m.excerpt })), ['id', 'startedAt', 'email', 'login', 'socket', 'at', 'in', 'excerpt']);
    });
}

/** `postern sessions watch CONN_ID`: the screen of a live connection's recording, read-only, until it ends. */
export function registerSessionWatch(sessions: Command, context: () => CliContext): void {
  sessions.command('watch <connection>')
    .description('follow a live SSH session\'s screen or a database session\'s transcript as it happens (read-only; Ctrl-C stops watching, not the session)')
    .action(async (connection: string) => {
      const ctx = context();
      const { recordings: live } = await ctx.client().get<{ recordings: RecordingRecord[] }>(`/api/v1/recordings${queryOf({ connection, live: 'true', limit: '20' })}`);
      // An interactive shell first; several live execs: the newest.
      const recording = live.find((r) => r.kind === 'shell') ?? live[0];
      if (!recording) throw new PosternError('not_found', `connection "${connection}" has no live recording (is it a managed SSH or database session that is still running?)`);
      process.stderr.write(`watching ${recording.email} as ${recording.login} on ${recording.socket} (${recording.id}); read-only, Ctrl-C to stop watching\n`);
      let first = true;
      for await (const line of castLines(ctx, recording.id, true)) {
        if (first) {
          first = false;
          continue;
        }
        const event = parseEventLine(line);
        if (event?.code === 'o') process.stdout.write(event.data);
      }
      const ended = await ctx.client().get<RecordingRecord>(`/api/v1/recordings/${encodeURIComponent(recording.id)}`);
      process.stderr.write(`\r\n[the session ended${ended.endReason ? `: ${ended.endReason}` : ''}]\n`);
    });
}
