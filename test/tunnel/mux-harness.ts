// Shared pieces of the multiplexer tests: loopback TCP ends, a logger whose lines can be
// searched, an echoing responder and a body collector.
import type net from 'node:net';
import { pino } from 'pino';
import type { MuxStream } from '../../src/tunnel/mux.js';
import { socketPair } from '../helpers/util.js';

/** Both ends of a half-open-capable loopback connection, destroyed by `cleanups` at the end. */
export async function loopbackPair(cleanups: (() => void)[]): Promise<[net.Socket, net.Socket]> {
  const ends = await socketPair({ allowHalfOpen: true });
  cleanups.push(() => ends.forEach((end) => end.destroy()));
  return ends;
}

/** A logger whose lines can be searched by reason (`has`) or by warnings with a reason (`warned`). */
export function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return {
    logger,
    lines,
    has: (reason: string) => lines.some((l) => l.reason === reason),
    warned: (reason: string) => lines.some((l) => (l.level as number) >= 40 && l.reason === reason),
    dump: () => JSON.stringify(lines),
  };
}

/** Answers 200 and echoes the stream back, half-closing when the opener does. */
export function echo(stream: MuxStream): void {
  stream.respond({ ':status': '200' });
  stream.pipe(stream);
}

export async function collect(stream: MuxStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
