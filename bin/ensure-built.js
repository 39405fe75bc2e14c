#!/usr/bin/env node
// `npm start` runs this first: it rebuilds dist/ only when a source file is newer than the
// last build (npm install builds once through `prepare`), so a restart starts at once.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// The dashboard is built last, so its page marks a complete build.
const built = [join(root, 'dist', 'src', 'cli', 'main.js'), join(root, 'dist', 'ui', 'index.html')];

/** The newest modification time under `path` (a file or a folder of sources). */
function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory() || /\.(ts|tsx|css|html)$/.test(entry.name)) latest = Math.max(latest, newest(join(path, entry.name)));
  }
  return latest;
}

const builtAt = Math.min(...built.map((file) => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0));
const sources = Math.max(...['src', 'test', 'bench', 'web', 'tsconfig.json', 'package.json'].map((p) => newest(join(root, p))));
if (sources > builtAt) {
  process.stderr.write(builtAt === 0 ? 'building Postern (once)…\n' : 'sources changed since the last build: rebuilding…\n');
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
