// One pino logger per process, to stderr (stdout is for command output). Level from
// POSTERN_LOG_LEVEL; secrets are redacted by path in case a caller logs a whole object.
import { pino } from 'pino';
import type { Logger } from 'pino';

export function createLogger(defaultLevel: string, env: NodeJS.ProcessEnv = process.env): Logger {
  return pino({
    level: env.POSTERN_LOG_LEVEL ?? defaultLevel,
    base: { pid: process.pid },
    redact: ['token', 'keyPem', 'req.headers.authorization', 'req.headers.cookie', '*.token', '*.keyPem'],
  }, pino.destination(2));
}
