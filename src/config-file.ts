// A YAML settings file (the connector's, the agent's) read the same way everywhere: a missing
// file, broken YAML and each field's problem become one `config_invalid` line naming the file.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { PosternError, errorMessage } from './errors.js';

/** The file's text; PosternError('config_invalid') naming the path and the reason when it cannot be read. */
export async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new PosternError('config_invalid', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? errorMessage(cause)}`, { cause });
  }
}

/** The YAML document in `text`; PosternError('config_invalid') with the parser's first line when it is not YAML. */
export function parseConfigYaml(text: string, source: string): unknown {
  try {
    return parseYaml(text);
  } catch (cause) {
    throw new PosternError('config_invalid', `${source}: not valid YAML: ${errorMessage(cause).split('\n')[0]}`, { cause });
  }
}

/** `file: problem` for one, `file: N problems: a; b` for several. */
export function problemsLine(source: string, problems: readonly string[]): string {
  return problems.length === 1 ? `${source}: ${problems[0]}` : `${source}: ${problems.length} problems: ${problems.join('; ')}`;
}
