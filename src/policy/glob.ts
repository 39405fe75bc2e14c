// Path globs of `what.http.paths`, compiled once to one RegExp per rule, and the request
// path as the matcher sees it (query cut, `//` collapsed, ambiguous paths flagged).

const REGEX_SPECIAL = /[.+?^${}()|[\]\\]/;
/**
 * Paths an upstream may read differently from the literal text: dot segments (also
 * percent-encoded), encoded or back slashes, path parameters (`;`) and encoded control bytes.
 * The edge refuses them unless a socket passes raw paths; they fail closed: allow rules with
 * paths do not match them, deny rules with paths do.
 */
const AMBIGUOUS = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)|%2f|%5c|\\|;|%[01][0-9a-f]|%7f/i;

/**
 * `*` is any run of characters within one segment; `/**` is zero or more segments (so
 * `/a/**` matches `/a`, `/a/` and `/a/b/c`), `**` elsewhere any characters; a trailing `/*`
 * reads as `/**` (the prefix itself and everything below). Everything else is literal.
 */
export function globToRegExpSource(glob: string): string {
  let g = glob.replace(/\/{2,}/g, '/');
  if (g.endsWith('/*') && !g.endsWith('/**')) g = `${g}*`;
  let out = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '/' && g.startsWith('/**', i) && (i + 3 === g.length || g[i + 3] === '/')) {
      out += '(?:/.*)?';
      i += 2;
    } else if (c === '*' && g[i + 1] === '*') {
      out += '.*';
      i += 1;
    } else if (c === '*') out += '[^/]*';
    else out += REGEX_SPECIAL.test(c) ? `\\${c}` : c;
  }
  return out;
}

/** One RegExp for a rule's globs (any of them). */
export function compilePathGlobs(globs: readonly string[], caseInsensitive = false): RegExp {
  return new RegExp(`^(?:${globs.map(globToRegExpSource).join('|')})$`, caseInsensitive ? 'i' : '');
}

export interface RequestPath {
  /** Without query or fragment, runs of `/` collapsed. */
  readonly path: string;
  /** Dot segments, encoded slashes or backslashes, or not starting with `/`: see AMBIGUOUS. */
  readonly ambiguous: boolean;
}

export function requestPath(raw: string): RequestPath {
  let end = raw.length;
  const q = raw.indexOf('?');
  if (q !== -1) end = q;
  const h = raw.indexOf('#');
  if (h !== -1 && h < end) end = h;
  const cut = end === raw.length ? raw : raw.slice(0, end);
  const path = cut.includes('//') ? cut.replace(/\/{2,}/g, '/') : cut;
  return { path, ambiguous: !path.startsWith('/') || AMBIGUOUS.test(path) };
}
