// `npm run fuzz`: a long run of the frame decoder fuzzer (the test suite runs a short one).
import { fuzzDecoder } from '../test/tunnel/frame-fuzz.js';

const count = Number(process.argv[2] ?? 2_000_000);
const seed = Number(process.argv[3] ?? (Math.random() * 2 ** 32) >>> 0);
if (!Number.isInteger(count) || count < 1) {
  console.error(`fuzz: the count must be a positive whole number, not "${process.argv[2]}"`);
  process.exit(2);
}
const started = Date.now();
try {
  const result = fuzzDecoder(count, seed, 30 * 60_000);
  console.log(`fuzz: seed ${seed}: ${result.inputs} inputs, ${result.frames} frames decoded, ${result.frameErrors} refused as frame errors, nothing else thrown (${((Date.now() - started) / 1000).toFixed(1)} s)`);
} catch (err) {
  console.error(`fuzz: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
