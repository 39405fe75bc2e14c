// The one canonical request target of an HTTP request on a socket host: what policies match
// (at the edge and in `policy test`) and what the edge sends upstream. Upstreams decode and
// fold paths in different ways (wsgiref decodes %61, Tomcat drops `;…` parameters, IIS ignores
// case), so every spelling that can be is resolved to one form, and the ones that cannot be
// resolved safely are refused.

export type TargetRefusal = 'request_target_invalid' | 'path_ambiguous';

export type CanonicalTarget =
  | { readonly ok: true; readonly path: string; readonly target: string }
  | { readonly ok: false; readonly code: TargetRefusal; readonly reason: string };

export interface TargetOptions {
  /**
   * The socket keeps encoded slashes, backslashes, encoded control bytes and path parameters
   * as the client wrote them instead of refusing them; everything else is still normalised.
   * Its policies then see an ambiguous path: allow rules with paths never match it, deny rules
   * with paths always do.
   */
  readonly rawPaths?: boolean;
}

const HEX = '0123456789ABCDEF';
/** A byte of the request line that never belongs in a target: controls, space, DEL, non-ASCII, `#`. */
const FORBIDDEN_BYTE = /[\x00-\x20\x7f-\uffff#]/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

function refuse(code: TargetRefusal, reason: string): CanonicalTarget {
  return { ok: false, code, reason };
}

/**
 * `raw` is the request line's target as the client sent it. Only origin-form (`/path?query`) is
 * served: absolute-form, authority-form and `*` are refused before any decision.
 */
export function canonicalTarget(raw: string, options: TargetOptions = {}): CanonicalTarget {
  if (!raw.startsWith('/')) return refuse('request_target_invalid', 'the request target must be a path starting with "/" (origin-form)');
  const bad = FORBIDDEN_BYTE.exec(raw);
  if (bad) {
    const what = bad[0] === '#' ? 'a fragment ("#")' : `the byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')}`;
    return refuse('request_target_invalid', `the request target contains ${what}`);
  }
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q);
  if (/%(?![0-9a-f]{2})/i.test(raw)) return refuse('request_target_invalid', 'the request target has a "%" that is not followed by two hex digits');
  const keepAmbiguous = options.rawPaths === true;
  if (!keepAmbiguous && rawPath.includes('\\')) return refuse('path_ambiguous', 'the path contains a backslash');
  if (!keepAmbiguous && rawPath.includes(';')) return refuse('path_ambiguous', 'the path contains ";" (path parameters)');
  const decoded = decodeUnreserved(rawPath, keepAmbiguous);
  if (typeof decoded !== 'string') return decoded;
  const path = removeDotSegments(decoded.replace(/\/{2,}/g, '/'));
  return { ok: true, path, target: path + query };
}

/** Decodes %XX of unreserved characters, upper-cases the hex of the rest, refuses (or keeps) encoded `/`, `\` and controls. */
function decodeUnreserved(path: string, keepAmbiguous: boolean): string | CanonicalTarget {
  if (!path.includes('%')) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const byte = Number.parseInt(path.slice(i + 1, i + 3), 16);
    i += 2;
    const escaped = `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
    const ambiguous = byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f;
    if (ambiguous && keepAmbiguous) {
      out += escaped;
      continue;
    }
    if (byte === 0x2f) return refuse('path_ambiguous', 'the path contains an encoded "/" (%2F)');
    if (byte === 0x5c) return refuse('path_ambiguous', 'the path contains an encoded backslash (%5C)');
    if (ambiguous) return refuse('path_ambiguous', `the path contains an encoded control byte (${escaped})`);
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(char) ? char : escaped;
  }
  return out;
}

/** RFC 3986 §5.2.4 on a path that starts with `/`: `.` and `..` resolved, never above the root. */
function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const segments = path.slice(1).split('/');
  const out: string[] = [];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '..') {
      out.pop();
      if (last) out.push('');
    } else if (segment === '.') {
      if (last) out.push('');
    } else out.push(segment);
  });
  return `/${out.join('/')}`;
}
