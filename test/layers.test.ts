// The layer order of DESIGN.md, checked on the source: every import between folders of src/
// points down (cli → control/edge/connector/agent → api-client → policy/identity/ca/reporting/
// tunnel → store), `policy` imports nothing of Postern's, and the root files import no folder.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Lower numbers sit higher; a folder may import from folders with a larger number. */
const LAYERS: Readonly<Record<string, number>> = {
  cli: 0,
  control: 1, edge: 1, connector: 1, agent: 1,
  'api-client': 2,
  policy: 3, identity: 3, ca: 3, reporting: 3, tunnel: 3,
  store: 4,
};
/** Imports sideways within a layer that are allowed: the policy engine is pure and has no dependencies. */
const SIDEWAYS: ReadonlySet<string> = new Set(['reporting→policy']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The folder of src/ a file is in ('' for the root files such as errors.ts). */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length > 1 ? parts[0]! : '';
}

function violations(): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gm)) {
      const to = folderOf(resolve(dirname(file), match[1]!));
      if (to === from || to === '') continue;
      const where = `${relative(SRC, file)} imports ${match[1]}`;
      if (from === '') found.push(`${where}: a root file must not depend on a folder`);
      else if (from === 'policy') found.push(`${where}: policy is pure and imports nothing of Postern's`);
      else if (!(from in LAYERS) || !(to in LAYERS)) found.push(`${where}: ${!(from in LAYERS) ? from : to} has no layer in this test (add it as DESIGN.md places it)`);
      else if (LAYERS[to]! < LAYERS[from]! || (LAYERS[to] === LAYERS[from] && !SIDEWAYS.has(`${from}→${to}`))) found.push(`${where}: ${from} may not depend on ${to}`);
    }
  }
  return found;
}

test('layers: every import between folders points down the layer order', () => {
  assert.deepEqual(violations(), []);
});

test('layers: the check sees the folders of src/', () => {
  const folders = new Set(sourceFiles(SRC).map(folderOf).filter(Boolean));
  for (const folder of ['cli', 'control', 'edge', 'connector', 'policy', 'store', 'tunnel']) assert.ok(folders.has(folder), folder);
});
