// A database session's transcript, recorded through the same RecordingSink as SSH sessions: per
// statement a psql-like prompt line (`orders=> SELECT …;`), then what psql would have printed —
// a bounded text table of the first rows, the command tag or row count, errors with their
// SQLSTATE, notices, COPY data — so `postern recordings play` and the dashboard player replay it
// as a terminal. The renderers are pure; SessionTranscript feeds them from wire messages. Every
// text is cleaned of control characters: a cell must not drive the terminal of whoever replays it.
import type { RecordingHandle, RecordingSink } from '../../reporting/index.js';
import { commandTagRows, decodeBackend } from '../../pgwire/index.js';
import type { FieldDescription, NoticeFields, PgPacket, TransactionStatus } from '../../pgwire/index.js';

export interface TranscriptLimits {
  /** Rows of a result shown (the rest are counted). */
  readonly maxRows: number;
  /** Characters of a cell shown. */
  readonly maxCellChars: number;
  readonly maxColumns: number;
  /** Characters of a statement echoed. */
  readonly maxStatementChars: number;
}

export const DEFAULT_TRANSCRIPT_LIMITS: TranscriptLimits = Object.freeze({ maxRows: 20, maxCellChars: 40, maxColumns: 20, maxStatementChars: 4096 });

const CRLF = '\r\n';
/** Type OIDs psql right-aligns: int2, int4, int8, oid, float4, float8, numeric, money. */
const NUMERIC_TYPES = new Set([20, 21, 23, 26, 700, 701, 790, 1700]);

/** `text` with every control character (C0, DEL, C1; escape sequences included) shown as \xNN; tabs become spaces. */
export function printable(text: string): string {
  return text.replace(/\t/g, '    ').replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** psql's prompt: `=>` (`=#` for a superuser), `=*>` inside a transaction block, `=!>` in a failed one. */
export function promptLine(database: string, superuser: boolean, status: TransactionStatus, sql: string, maxChars = DEFAULT_TRANSCRIPT_LIMITS.maxStatementChars): string {
  const mark = status === 'T' ? '*' : status === 'E' ? '!' : '';
  let text = sql.trim();
  const cut = [...text].length - maxChars;
  if (cut > 0) text = `${[...text].slice(0, maxChars).join('')} … (${cut} more characters)`;
  else if (!text.endsWith(';')) text += ';';
  const lines = text.split(/\r?\n/).map(printable);
  return `${printable(database)}=${mark}${superuser ? '#' : '>'} ${lines.join(CRLF)}${CRLF}`;
}

/** One cell as text: NULL is empty (as psql shows it), binary-format values in hex. */
export function cellText(value: Buffer | null, format: number, maxChars: number): string {
  if (value === null) return '';
  const text = format === 1 ? `\\x${value.subarray(0, maxChars).toString('hex')}` : value.toString('utf8');
  return shorten(printable(text.replace(/\r?\n/g, '\\n')), maxChars);
}

const width = (text: string) => [...text].length;

function pad(text: string, size: number, align: 'left' | 'right' | 'center'): string {
  const gap = size - width(text);
  if (gap <= 0) return text;
  if (align === 'right') return ' '.repeat(gap) + text;
  if (align === 'left') return text + ' '.repeat(gap);
  const left = Math.floor(gap / 2);
  return ' '.repeat(left) + text + ' '.repeat(gap - left);
}

export interface TableColumn {
  readonly name: string;
  readonly numeric: boolean;
}

/** Rows already rendered as cell texts. `total`: rows the statement returned (more than `rows` when bounded); `hiddenColumns`: columns left out. */
export function renderTable(columns: readonly TableColumn[], rows: readonly (readonly string[])[], total: number, hiddenColumns = 0): string {
  const names = columns.map((c) => shorten(printable(c.name), DEFAULT_TRANSCRIPT_LIMITS.maxCellChars));
  const widths = names.map((name, i) => Math.max(width(name), ...rows.map((row) => width(row[i] ?? ''))));
  const line = (cells: readonly string[], align: (i: number) => 'left' | 'right' | 'center') => ` ${cells.map((cell, i) => pad(cell, widths[i]!, align(i))).join(' | ')}`.trimEnd();
  const out = [
    line(names, () => 'center'),
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...rows.map((row) => line(columns.map((_, i) => row[i] ?? ''), (i) => (columns[i]!.numeric ? 'right' : 'left'))),
  ];
  if (total > rows.length) out.push(`… ${total - rows.length} more row${total - rows.length === 1 ? '' : 's'} not recorded`);
  if (hiddenColumns > 0) out.push(`… ${hiddenColumns} more column${hiddenColumns === 1 ? '' : 's'} not recorded`);
  out.push(`(${total} row${total === 1 ? '' : 's'})`, '');
  return out.join(CRLF) + CRLF;
}

/** An ErrorResponse or NoticeResponse as psql prints it in verbose mode: severity, SQLSTATE, message, detail, hint. */
export function renderNotice(fields: NoticeFields): string {
  const severity = fields.V ?? fields.S ?? 'ERROR';
  const lines = [`${severity}:  ${fields.C ? `${fields.C}: ` : ''}${fields.M ?? ''}`];
  if (fields.D) lines.push(`DETAIL:  ${fields.D}`);
  if (fields.H) lines.push(`HINT:  ${fields.H}`);
  return lines.map(printable).join(CRLF) + CRLF;
}

/** COPY data lines shown (bounded), then the tag. */
export function renderCopy(lines: readonly string[], total: number, tag: string): string {
  const out = [...lines];
  if (total > lines.length) out.push(`… ${total - lines.length} more line${total - lines.length === 1 ? '' : 's'} not recorded`);
  out.push(printable(tag));
  return out.join(CRLF) + CRLF;
}

export interface TranscriptSession {
  readonly database: string;
  /** The upstream said `is_superuser=on`: psql's prompt ends in `#`. */
  readonly superuser: boolean;
}

/** A session whose upstream login is done, as its recording is listed. */
export interface TranscriptStart extends TranscriptSession {
  readonly connectionId: string;
  /** The sign-in the certificate was issued under, when it names one. */
  readonly sessionId?: string | undefined;
  readonly socket: string;
  readonly email: string;
  /** The upstream session's role; '' when the connector's default login did not say. */
  readonly role: string;
  readonly readOnly: boolean;
  readonly startedAt: Date;
}

/** Starts the recording of `session` in `sink` and the transcript that writes it. */
export function startTranscript(sink: RecordingSink, session: TranscriptStart): SessionTranscript {
  const recording = sink.start({
    connectionId: session.connectionId, ...(session.sessionId ? { sessionId: session.sessionId } : {}), socket: session.socket, email: session.email,
    login: session.role, kind: 'database', command: session.database, width: 120, height: 40, term: '',
    title: `${session.email} on ${session.socket}: database ${session.database} as ${session.role || 'the connector\'s login'}${session.readOnly ? ' (read-only)' : ''}`,
    // Statements are the input; they are in the audit trail anyway, so they are kept whatever record_input says (an ssh setting).
    startedAt: session.startedAt, recordInput: true,
  });
  return new SessionTranscript(recording, { database: session.database, superuser: session.superuser });
}

/** What one result (one statement of a string, one Execute) has shown so far. */
interface Result {
  columns?: TableColumn[];
  formats?: number[];
  hiddenColumns: number;
  rows: string[][];
  total: number;
  copy?: { lines: string[]; total: number };
}

const emptyResult = (): Result => ({ hiddenColumns: 0, rows: [], total: 0 });

/** Writes one session's transcript into its recording; every method returns at once and never throws. */
export class SessionTranscript {
  #result: Result = emptyResult();

  constructor(
    private readonly recording: RecordingHandle,
    private readonly session: TranscriptSession,
    private readonly limits: TranscriptLimits = DEFAULT_TRANSCRIPT_LIMITS,
  ) {}

  get id(): string {
    return this.recording.id;
  }

  /** A statement starts: its prompt line on the screen, its text as what the person sent. */
  statement(sql: string, status: TransactionStatus): void {
    this.#result = emptyResult();
    this.recording.input(Buffer.from(shorten(sql, this.limits.maxStatementChars)));
    this.#show(promptLine(this.session.database, this.session.superuser, status, sql, this.limits.maxStatementChars));
  }

  /** An error the edge answered itself (a read-only refusal). */
  refused(fields: NoticeFields): void {
    this.#show(renderNotice(fields));
  }

  /** A client CopyData during COPY FROM STDIN: the lines sent, bounded like rows. */
  copyIn(payload: Buffer): void {
    this.#copyLines(payload);
  }

  /** A message from the upstream; only results, errors, notices and COPY matter here. */
  fromServer(packet: PgPacket): void {
    const result = this.#result;
    try {
      switch (packet.type) {
        case 'T': {
          const message = decodeBackend(packet);
          if (message.type !== 'RowDescription') return;
          const fields: FieldDescription[] = message.fields.slice(0, this.limits.maxColumns);
          this.#result = { ...emptyResult(), columns: fields.map((f) => ({ name: f.name, numeric: NUMERIC_TYPES.has(f.typeOid) })), formats: fields.map((f) => f.format), hiddenColumns: message.fields.length - fields.length };
          return;
        }
        case 'D': {
          result.total++;
          if (result.rows.length >= this.limits.maxRows) return;
          const message = decodeBackend(packet);
          if (message.type !== 'DataRow') return;
          result.rows.push(message.values.slice(0, this.limits.maxColumns).map((value, i) => cellText(value, result.formats?.[i] ?? 0, this.limits.maxCellChars)));
          return;
        }
        case 'H': case 'G':
          this.#result = { ...emptyResult(), copy: { lines: [], total: 0 } };
          return;
        case 'd':
          if (result.copy) this.#copyLines(packet.payload);
          return;
        case 'C': {
          const tag = packet.payload.toString('utf8', 0, Math.max(0, packet.payload.length - 1));
          this.#result = emptyResult();
          // The tag counts rows exactly; the lines counted may not (a client may split a row over two messages).
          if (result.copy) return this.#show(renderCopy(result.copy.lines, commandTagRows(tag) ?? result.copy.total, tag));
          if (result.columns) return this.#show(renderTable(result.columns, result.rows, result.total, result.hiddenColumns));
          return this.#show(printable(tag) + CRLF);
        }
        case 'E': case 'N': {
          const message = decodeBackend(packet);
          if (message.type !== 'ErrorResponse' && message.type !== 'NoticeResponse') return;
          if (message.type === 'ErrorResponse') this.#result = emptyResult();
          return this.#show(renderNotice(message.fields));
        }
        default:
          return;
      }
    } catch {
      // A message the transcript cannot read is left out of it; the session itself is unaffected.
    }
  }

  end(reason: string): void {
    this.recording.end({ reason });
  }

  #copyLines(payload: Buffer): void {
    const copy = (this.#result.copy ??= { lines: [], total: 0 });
    for (const line of payload.toString('utf8').split('\n')) {
      if (line === '') continue;
      copy.total++;
      if (copy.lines.length < this.limits.maxRows) copy.lines.push(shorten(printable(line), this.limits.maxCellChars * 4));
    }
  }

  #show(text: string): void {
    this.recording.output(Buffer.from(text));
  }
}
