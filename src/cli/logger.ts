// One pino logger per process, to stderr (stdout is for command output). Level from
// POSTERN_LOG_LEVEL; secrets are redacted by path in case a caller logs a whole object.
// On a terminal the lines are short and human; piped (or POSTERN_LOG_FORMAT=json) they are JSON.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { PosternError } from '../errors.js';

export type LogFormat = 'human' | 'json';

/** `--log-format` (carried in POSTERN_LOG_FORMAT) or, unset, human on a terminal and JSON elsewhere. */
export function logFormat(env: NodeJS.ProcessEnv, isTty: boolean): LogFormat {
  const chosen = env.POSTERN_LOG_FORMAT;
  if (chosen === undefined || chosen === '') return isTty ? 'human' : 'json';
  if (chosen !== 'human' && chosen !== 'json') throw new PosternError('config_invalid', `log format "${chosen}" is not human or json`);
  return chosen;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const SKIPPED = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function field(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value) return JSON.stringify(String((value as { message: unknown }).message));
  return JSON.stringify(value);
}

/** One pino record as a person reads it: `12:04:05 warn  tunnel reconnect scheduled slot=0 delayMs=950`. */
export function humanLine(record: Record<string, unknown>): string {
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now()).toTimeString().slice(0, 8);
  const level = (LEVELS[Number(record.level)] ?? String(record.level)).padEnd(5);
  const fields = Object.entries(record).filter(([key, value]) => !SKIPPED.has(key) && value !== undefined).map(([key, value]) => `${key}=${field(value)}`);
  return `${time} ${level} ${String(record.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}\n`;
}

function humanDestination(): DestinationStream {
  return {
    write(line: string): void {
      try {
        process.stderr.write(humanLine(JSON.parse(line) as Record<string, unknown>));
      } catch {
        process.stderr.write(line);
      }
    },
  };
}

export function createLogger(defaultLevel: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const format = logFormat(env, process.stderr.isTTY === true);
  return pino({
    level: env.POSTERN_LOG_LEVEL ?? defaultLevel,
    base: { pid: process.pid },
    redact: ['token', 'keyPem', 'req.headers.authorization', 'req.headers.cookie', '*.token', '*.keyPem'],
  }, format === 'human' ? humanDestination() : pino.destination(2));
}
