// Audit events as RFC 5424 syslog for a SIEM: a pure formatter (structured data under the
// documentation enterprise number 32473) and a sender over UDP (one datagram per event, RFC 5426)
// or TCP (octet-counted frames, RFC 6587), created from `udp://host:514` or `tcp://host:6514`.
import dgram from 'node:dgram';
import { describeEvent } from './describe.js';
import net from 'node:net';
import { errorMessage, PosternError } from '../errors.js';
import type { AuditEvent } from './events.js';

export const SYSLOG_FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9,
  authpriv: 10, ftp: 11, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21,
  local6: 22, local7: 23,
} as const;

export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

export interface SyslogFormatOptions {
  readonly appName?: string;
  readonly hostname: string;
  /** Default local0. */
  readonly facility?: SyslogFacility;
}

const SEVERITY = { warning: 4, notice: 5, info: 6 } as const;
const SD_ID = 'postern@32473';
const NIL = '-';
// Common fields first, in a stable order; `details` follow under their own names.
const COMMON_FIELDS = ['id', 'actor', 'socket', 'clientIp', 'country', 'decision', 'rule', 'connectionId', 'sessionId'] as const;

/** Denials (of access, a request or a sign-in) and kills warn, grants are notices, the rest is info. */
export function syslogSeverity(event: AuditEvent): number {
  const warns = event.type === 'access.denied' || event.type === 'connection.killed' || event.type === 'login.failed' || event.type === 'connector.socket_refused';
  if (warns || event.decision === 'deny') return SEVERITY.warning;
  return event.type === 'access.allowed' ? SEVERITY.notice : SEVERITY.info;
}

/** Header fields are printable US-ASCII without spaces, bounded in length, NILVALUE when empty. */
function headerField(value: string, maxLength: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '_').slice(0, maxLength);
  return clean === '' ? NIL : clean;
}

// Control characters become spaces, so a crafted actor or path cannot fake a second log line
// in collectors that split on newlines.
const flatten = (text: string): string => text.replace(/[\x00-\x1f\x7f]/g, ' ');

/** PARAM-VALUE escaping of RFC 5424 §6.3.3: `"`, `\` and `]`. */
export function escapeParamValue(value: string): string {
  return flatten(value).replace(/["\\\]]/g, (c) => `\\${c}`);
}

function paramName(key: string): string {
  return key.replace(/[^\x21-\x7e]|[="\]]/g, '').slice(0, 32);
}

function paramValue(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function structuredData(event: AuditEvent): string {
  const params: string[] = [];
  const seen = new Set<string>();
  const add = (key: string, value: unknown): void => {
    const name = paramName(key);
    const text = paramValue(value);
    if (name === '' || text === undefined || seen.has(name)) return;
    seen.add(name);
    params.push(`${name}="${escapeParamValue(text)}"`);
  };
  for (const field of COMMON_FIELDS) add(field, event[field]);
  for (const [key, value] of Object.entries(event.details)) add(key, value);
  return `[${SD_ID} ${params.join(' ')}]`;
}

/** The line `postern audit` prints for the event, on one line whatever its values hold. */
function summary(event: AuditEvent): string {
  return flatten(describeEvent(event));
}

function timestamp(at: string): string {
  const time = new Date(at);
  return Number.isNaN(time.getTime()) ? NIL : time.toISOString();
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [postern@32473 …] MSG`, with MSGID = event type. */
export function formatSyslog(event: AuditEvent, options: SyslogFormatOptions): string {
  const pri = SYSLOG_FACILITIES[options.facility ?? 'local0'] * 8 + syslogSeverity(event);
  const header = [
    `<${pri}>1`,
    timestamp(event.at),
    headerField(options.hostname, 255),
    headerField(options.appName ?? 'postern', 48),
    NIL,
    headerField(event.type, 32),
  ].join(' ');
  return `${header} ${structuredData(event)} ${summary(event)}`;
}

export interface SyslogSinkOptions extends Partial<SyslogFormatOptions> {
  /** TCP connect and write timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** UDP messages are cut to this many bytes (RFC 5426 lets transports truncate); default 8 KiB. */
  readonly maxDatagramBytes?: number;
}

export interface SyslogSink {
  send(events: readonly AuditEvent[]): Promise<void>;
  close(): Promise<void>;
}

interface Target {
  readonly transport: 'udp' | 'tcp';
  readonly host: string;
  readonly port: number;
}

/** `udp://host[:514]` or `tcp://host[:514]`; IPv6 hosts in brackets. */
export function parseSyslogUrl(url: string): Target {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PosternError('config_invalid', `syslog target "${url}" is not a URL (want udp://host:514 or tcp://host:514)`);
  }
  const transport = parsed.protocol.slice(0, -1);
  if (transport !== 'udp' && transport !== 'tcp') {
    throw new PosternError('config_invalid', `syslog target ${parsed.protocol}// is not supported (want udp:// or tcp://)`);
  }
  if (parsed.hostname === '') throw new PosternError('config_invalid', `syslog target "${url}" has no host`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { transport, host, port: parsed.port === '' ? 514 : Number(parsed.port) };
}

/** Cuts `text` to at most `max` UTF-8 bytes without splitting a character. */
function truncateUtf8(text: string, max: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

interface Sender {
  write(message: string): Promise<void>;
  close(): Promise<void>;
}

function udpSender(target: Target, maxBytes: number): Sender {
  let socket: dgram.Socket | undefined;
  return {
    write(message) {
      if (socket === undefined) {
        const created = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4');
        // Send errors reach the callback below; anything else retires the socket.
        created.on('error', () => {
          if (socket === created) socket = undefined;
          created.close();
        });
        socket = created;
      }
      const datagram = truncateUtf8(message, maxBytes);
      return new Promise((resolve, reject) => {
        socket!.send(datagram, target.port, target.host, (err) => (err ? reject(err) : resolve()));
      });
    },
    async close() {
      const closing = socket;
      socket = undefined;
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
  };
}

function tcpSender(target: Target, timeoutMs: number): Sender {
  let current: Promise<net.Socket> | undefined;
  const dial = (): Promise<net.Socket> => {
    const socket = net.connect({ host: target.host, port: target.port });
    // The timeout runs only while connecting or writing: an idle connection is kept.
    socket.setTimeout(timeoutMs);
    socket.on('timeout', () => socket.destroy(new Error(`no progress for ${timeoutMs} ms`)));
    socket.resume();
    const ready = new Promise<net.Socket>((resolve, reject) => {
      socket.once('connect', () => {
        socket.setTimeout(0);
        resolve(socket);
      });
      socket.once('error', reject);
    });
    // A broken connection is forgotten, so the next write dials again.
    socket.on('error', () => undefined);
    socket.once('close', () => {
      if (current === ready) current = undefined;
    });
    return ready;
  };
  return {
    async write(message) {
      current ??= dial();
      const socket = await current;
      const payload = Buffer.from(message, 'utf8');
      socket.setTimeout(timeoutMs);
      try {
        await new Promise<void>((resolve, reject) => {
          socket.write(Buffer.concat([Buffer.from(`${payload.length} `), payload]), (err) => (err ? reject(err) : resolve()));
        });
      } finally {
        socket.setTimeout(0);
      }
    },
    async close() {
      const closing = current;
      current = undefined;
      const socket = await closing?.catch(() => undefined);
      if (socket && !socket.destroyed) await new Promise<void>((resolve) => socket.end(resolve));
    },
  };
}

/** A sink for the exporter; every failure rejects, so the exporter retries from its cursor. */
export function createSyslogSink(url: string, options: SyslogSinkOptions = {}): SyslogSink {
  const target = parseSyslogUrl(url);
  // Named from the parsed parts, so nothing else the URL carried ends up in logs.
  const where = `${target.transport}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const format: SyslogFormatOptions = {
    hostname: options.hostname ?? 'postern',
    appName: options.appName ?? 'postern',
    facility: options.facility ?? 'local0',
  };
  const sender =
    target.transport === 'udp'
      ? udpSender(target, options.maxDatagramBytes ?? 8192)
      : tcpSender(target, options.timeoutMs ?? 10_000);
  return {
    async send(events) {
      for (const event of events) {
        try {
          await sender.write(formatSyslog(event, format));
        } catch (err) {
          throw new PosternError('upstream_unreachable', `syslog ${where}: ${errorMessage(err)}`, { cause: err, retryable: true });
        }
      }
    },
    close: () => sender.close(),
  };
}
