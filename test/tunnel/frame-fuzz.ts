// Seeded fuzzing of the frame decoder: random bytes, and valid frame sequences with random
// mutations, fed in random chunks. Any throw other than FrameError, or a payload handed on
// that is larger than a frame may be, is a failure that names the seed and the input.
import { FrameDecoder, FrameError, FrameType, FLAG_END, FLAG_OPEN, MAX_FRAME_PAYLOAD, decodeHeaders, encodeFrame, encodeHeaders } from '../../src/tunnel/frame.js';

/** mulberry32: small, fast, and the same sequence for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzResult {
  inputs: number;
  frameErrors: number;
  frames: number;
}

function validFrames(rand: () => number, int: (n: number) => number): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0, n = 1 + int(6); i < n; i++) {
    const stream = 1 + 2 * int(4);
    switch (int(5)) {
      case 0: frames.push(encodeFrame(FrameType.headers, FLAG_OPEN | (rand() < 0.3 ? FLAG_END : 0), stream, encodeHeaders({ ':path': '/x', 'x-a': ['1', 'two'], e: '' }))); break;
      case 1: frames.push(encodeFrame(FrameType.data, rand() < 0.3 ? FLAG_END : 0, stream, Buffer.alloc(int(3000), int(256)))); break;
      case 2: frames.push(encodeFrame(FrameType.window, 0, stream, Buffer.from([0, 0, 1, 0]))); break;
      case 3: frames.push(encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8))); break;
      default: frames.push(encodeFrame(FrameType.reset, 0, stream, Buffer.from([0, 0, 0, 3]))); break;
    }
  }
  return frames;
}

function mutate(input: Buffer, rand: () => number, int: (n: number) => number): Buffer {
  const out = Buffer.from(input);
  for (let i = 0, n = int(4); i < n && out.length > 0; i++) {
    const at = int(out.length);
    switch (int(4)) {
      case 0: out[at] = out[at]! ^ (1 << int(8)); break;
      case 1: out[at] = int(256); break;
      case 2: if (out.length >= 10) out.writeUInt32BE(rand() < 0.5 ? MAX_FRAME_PAYLOAD + int(10) : int(MAX_FRAME_PAYLOAD), 0); break;
      default: return out.subarray(0, at);
    }
  }
  return out;
}

export function fuzzDecoder(iterations: number, seed: number, maxMs = 60_000): FuzzResult {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const result: FuzzResult = { inputs: 0, frameErrors: 0, frames: 0 };
  const deadline = Date.now() + maxMs;
  for (let i = 0; i < iterations && Date.now() < deadline; i++) {
    const input = rand() < 0.3
      ? Buffer.from(Array.from({ length: int(200) }, () => int(256)))
      : mutate(Buffer.concat(validFrames(rand, int)), rand, int);
    result.inputs++;
    const fail = (what: string) => new Error(`frame fuzz seed ${seed} input ${i}: ${what}; input ${input.toString('hex')}`);
    const decoder = new FrameDecoder({
      data: (_stream, piece) => {
        if (piece.length > MAX_FRAME_PAYLOAD) throw fail(`a DATA piece of ${piece.length} bytes`);
      },
      frame: (type, _flags, _stream, payload) => {
        result.frames++;
        if (payload.length > MAX_FRAME_PAYLOAD) throw fail(`a control payload of ${payload.length} bytes`);
        if (type === FrameType.headers) decodeHeaders(payload);
      },
    });
    try {
      for (let at = 0; at < input.length;) {
        const size = 1 + int(64);
        decoder.push(input.subarray(at, at + size));
        at += size;
      }
      decoder.finish();
    } catch (err) {
      if (!(err instanceof FrameError)) throw err instanceof Error && err.message.startsWith('frame fuzz') ? err : fail(`threw ${String(err)}`);
      result.frameErrors++;
    }
  }
  return result;
}
