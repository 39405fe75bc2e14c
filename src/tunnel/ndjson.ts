// Newline-delimited JSON over a byte stream with a bounded line length: a peer that sends
// garbage or an endless line gets an error, never unbounded memory.
import { StringDecoder } from 'node:string_decoder';
import type { Readable, Writable } from 'node:stream';
import type { z } from 'zod';
import { PosternError } from '../errors.js';

export function readMessages<T>(
  source: Readable,
  schema: z.ZodType<T>,
  maxLine: number,
  onMessage: (message: T) => void,
  onError: (err: PosternError) => void,
): void {
  let buffered = '';
  let failed = false;
  const fail = (err: PosternError) => {
    failed = true;
    buffered = '';
    onError(err);
  };
  // Decoded here, not with setEncoding: the stream's buffer then keeps counting bytes, which is what its credit window counts.
  const decoder = new StringDecoder('utf8');
  source.on('data', (chunk: Buffer) => {
    if (failed) return;
    buffered += decoder.write(chunk);
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim() === '') continue;
      const parsed = parseLine(line, schema);
      if (parsed instanceof PosternError) return fail(parsed);
      onMessage(parsed);
    }
    if (buffered.length > maxLine) fail(new PosternError('bad_request', `control message longer than ${maxLine} bytes`));
  });
}

function parseLine<T>(line: string, schema: z.ZodType<T>): T | PosternError {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (cause) {
    return new PosternError('bad_request', 'control message is not JSON', { cause });
  }
  const result = schema.safeParse(json);
  return result.success ? result.data : new PosternError('bad_request', `control message rejected: ${result.error.issues[0]?.message ?? 'invalid'}`);
}

export function writeMessage(sink: Writable, message: unknown): void {
  if (!sink.writableEnded && !sink.destroyed) sink.write(JSON.stringify(message) + '\n');
}
