// Repeatable CLI flags: `--tag key=value` pairs and plain repeated values (`--socket a --socket b`).
import { PosternError } from '../errors.js';

/** Commander's accumulator for a repeatable option. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `--tag key=value` values as an object; undefined when the flag was not given. */
export function parseTags(values: string[] | undefined, flag = '--tag'): Record<string, string> | undefined {
  if (!values) return undefined;
  const tags: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new PosternError('bad_request', `${flag} "${value}" must be key=value`);
    tags[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return tags;
}
