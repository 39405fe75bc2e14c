// Joins a client connection and a tunnel stream byte for byte, with TCP semantics:
// a FIN on one side half-closes the other, an error or reset tears both down.
import type { Duplex } from 'node:stream';
import { ResetCode } from '../tunnel/index.js';
import type { MuxStream } from '../tunnel/index.js';

export interface PipeResult {
  bytesUp: number;
  bytesDown: number;
}

/** Returns the byte counters, which stay live until both sides have closed. */
export function joinStreams(client: Duplex, stream: MuxStream, onClose?: (result: PipeResult) => void): PipeResult {
  const result: PipeResult = { bytesUp: 0, bytesDown: 0 };
  let closed = 0;
  const done = () => {
    if (++closed === 2) onClose?.(result);
  };
  client.on('data', (chunk: Buffer) => {
    result.bytesUp += chunk.length;
    if (!stream.write(chunk)) {
      client.pause();
      stream.once('drain', () => client.resume());
    }
  });
  client.on('end', () => stream.end());
  stream.on('data', (chunk: Buffer) => {
    result.bytesDown += chunk.length;
    if (!client.write(chunk)) {
      stream.pause();
      client.once('drain', () => stream.resume());
    }
  });
  stream.on('end', () => {
    if (!client.destroyed) client.end();
  });
  client.on('error', () => {
    if (!stream.destroyed) stream.reset(ResetCode.cancel);
  });
  client.on('close', () => {
    if (!stream.destroyed && !(stream.readableEnded && stream.writableFinished)) stream.reset(ResetCode.cancel);
    done();
  });
  stream.on('error', () => client.destroy());
  stream.on('close', () => {
    if (stream.resetCode !== undefined) client.destroy();
    done();
  });
  client.resume();
  return result;
}
