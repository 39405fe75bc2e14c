// The generalisations `policy suggest` makes of observed traffic, as a person would: path
// prefixes instead of thousands of paths (a trie over path segments, ids collapsed), groups
// instead of long email lists, methods grouped. Pure.

// ---- paths: a trie over segments ---------------------------------------------------------

interface PathNode {
  children: Map<string, PathNode>;
  /** A path ended here. */
  terminal: boolean;
  /** Collapsed for having too many children: everything below is `/*`. */
  wildTail: boolean;
}

const node = (): PathNode => ({ children: new Map(), terminal: false, wildTail: false });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Segments that name one thing among many: numbers, UUIDs, long hex (hashes, object ids). */
export function isIdSegment(segment: string): boolean {
  return /^\d+$/.test(segment) || UUID.test(segment) || /^[0-9a-f]{16,}$/i.test(segment);
}

function merge(into: PathNode, from: PathNode): void {
  into.terminal ||= from.terminal;
  into.wildTail ||= from.wildTail;
  for (const [segment, child] of from.children) {
    const existing = into.children.get(segment);
    if (existing) merge(existing, child);
    else into.children.set(segment, child);
  }
}

function collapse(at: PathNode, segments: readonly string[]): void {
  const star = at.children.get('*') ?? node();
  for (const segment of segments) {
    merge(star, at.children.get(segment)!);
    at.children.delete(segment);
  }
  at.children.set('*', star);
}

function generalise(at: PathNode, maxChildren: number): void {
  if (at.children.size > maxChildren) {
    collapse(at, [...at.children.keys()].filter((s) => s !== '*'));
    at.children.get('*')!.wildTail = true;
    return;
  }
  const ids = [...at.children.keys()].filter(isIdSegment);
  if (ids.length > 0) collapse(at, ids);
  for (const child of at.children.values()) generalise(child, maxChildren);
}

const segmentsOf = (path: string) => (path === '/' ? [] : path.slice(1).split('/'));

/** A function from each observed path to the glob that covers it. */
export function pathGeneraliser(paths: Iterable<string>, maxChildren: number): (path: string) => string {
  const root = node();
  for (const path of paths) {
    let at = root;
    for (const segment of segmentsOf(path)) {
      let next = at.children.get(segment);
      if (!next) at.children.set(segment, (next = node()));
      at = next;
    }
    at.terminal = true;
  }
  generalise(root, maxChildren);
  return (path) => {
    let at = root;
    const out: string[] = [];
    for (const segment of segmentsOf(path)) {
      const literal = at.children.get(segment);
      // A collapsed segment is `*` in a glob; a literal `*` in a path would read as one too.
      const next = literal && segment !== '*' ? literal : at.children.get('*');
      if (!next) return path;
      out.push(next === literal && segment !== '*' ? segment : '*');
      if (next.wildTail) break;
      at = next;
    }
    return `/${out.join('/')}`;
  };
}

// ---- who: groups instead of emails -------------------------------------------------------

/**
 * Groups that stand for some of `actors`, and the emails left over. A group qualifies when at
 * least `minGroupMembers` of its members are among the actors and either every member of it seen
 * on the socket is (the group shares the access), or `groupQuorum` of them are. Biggest first;
 * a group is taken only when it covers someone not yet covered.
 */
export function generaliseWho(actors: ReadonlySet<string>, seenOnSocket: ReadonlySet<string>, groupsOf: ReadonlyMap<string, readonly string[]>, options: { readonly minGroupMembers: number; readonly groupQuorum: number }): { groups: string[]; emails: string[] } {
  const members = new Map<string, string[]>();
  for (const [email, groups] of groupsOf) for (const g of groups) (members.get(g) ?? members.set(g, []).get(g)!).push(email);
  const candidates: { group: string; inside: string[] }[] = [];
  for (const [group, all] of members) {
    const inside = all.filter((e) => actors.has(e));
    if (inside.length < options.minGroupMembers) continue;
    const seen = all.filter((e) => seenOnSocket.has(e));
    if (seen.every((e) => actors.has(e)) || inside.length >= options.groupQuorum) candidates.push({ group, inside });
  }
  candidates.sort((a, b) => b.inside.length - a.inside.length || (a.group < b.group ? -1 : 1));
  const covered = new Set<string>();
  const groups: string[] = [];
  for (const c of candidates) {
    if (c.inside.every((e) => covered.has(e))) continue;
    groups.push(c.group);
    for (const e of c.inside) covered.add(e);
  }
  return { groups: groups.sort(), emails: [...actors].filter((e) => !covered.has(e)).sort() };
}

// ---- methods -----------------------------------------------------------------------------

const METHOD_ORDER = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'];
const byMethod = (a: string, b: string) => {
  const ia = METHOD_ORDER.indexOf(a);
  const ib = METHOD_ORDER.indexOf(b);
  return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
};

/** Sorted, HEAD beside GET (a HEAD is a GET without its body); empty (= any) from `anyAt` distinct methods. */
export function groupedMethods(methods: readonly string[], anyAt: number): string[] {
  const set = new Set(methods.map((m) => m.toUpperCase()));
  if (set.has('GET')) set.add('HEAD');
  return set.size >= anyAt ? [] : [...set].sort(byMethod);
}
