// Summarises V8 CPU profiles (.cpuprofile, from `--cpu-prof`): the frames with the most self time, per profile.
// Usage: BENCH_POSTERN_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench -- --only http
//        node dist/bench/profile-summary.js /tmp/prof [--top N]
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface FrameShare {
  frame: string;
  selfMs: number;
  share: number;
}

/** One label per frame: function name and the file it lives in (line numbers would split one function across samples of its inlined copies). */
function frameLabel(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const file = url.replace(/^file:\/\//, '');
  const where = file.includes('/node_modules/') ? file.slice(file.lastIndexOf('/node_modules/') + 14) : file.startsWith('node:') ? file : basename(file);
  return `${name} ${where}`;
}

/** Self time per frame label, largest first; `(idle)` is left out so shares are of time spent working. */
export function topFrames(profile: CpuProfile, top: number): { busyMs: number; frames: FrameShare[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const label = frameLabel(node);
    selfUs.set(label, (selfUs.get(label) ?? 0) + Math.max(0, deltas[i] ?? 0));
  }
  const busyUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const frames = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { busyMs: busyUs / 1000, frames };
}

function main(argv: string[]): void {
  const dir = argv[0];
  const topAt = argv.indexOf('--top');
  const top = topAt >= 0 ? Number(argv[topAt + 1]) : 15;
  if (!dir || !Number.isInteger(top) || top < 1) {
    console.error('usage: node dist/bench/profile-summary.js DIR [--top N]');
    process.exitCode = 2;
    return;
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) {
    console.error(`no .cpuprofile files in ${dir}`);
    process.exitCode = 1;
    return;
  }
  for (const file of files) {
    const { busyMs, frames } = topFrames(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, top);
    console.log(`\n${file}: ${(busyMs / 1000).toFixed(1)} s busy`);
    for (const f of frames) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.frame}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) main(process.argv.slice(2));
