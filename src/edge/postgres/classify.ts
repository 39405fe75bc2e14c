// What each statement of a query string does, decided by PostgreSQL's own parser (libpg-query:
// the server's grammar compiled to WASM, so the proxy and the database never disagree on where a
// statement ends, what a `$$` or `E'\''` quotes, or what a CTE contains), and whether a read-only
// session may run it. Fails closed: text the parser rejects, and any statement kind not known to
// be harmless, is refused.
//
// Functions are opaque here: `SELECT my_writer()` parses as a read. That is why a read-only
// session is also opened upstream with default_transaction_read_only = on, so PostgreSQL itself
// refuses a write done inside a function; this classifier's job is to refuse everything that
// could switch that second defence off (SET / RESET / set_config() / BEGIN READ WRITE / DISCARD ALL).
import { loadModule, parseSync } from 'libpg-query';

export type StatementKind = 'read' | 'write' | 'ddl' | 'transaction' | 'set' | 'copy-in' | 'copy-out' | 'other';

export interface StatementClass {
  kind: StatementKind;
  /** Why it is that kind, or why a read-only session may not run it: names the construct. */
  reason: string;
  /** May run in a read-only session. */
  readOnly: boolean;
  /** The statement's own text, as cut by the parser. */
  text: string;
  /** `PREPARE name AS …`: the name, so the session can remember what EXECUTE name will run. */
  prepares?: string;
  /** `EXECUTE name`: the prepared statement it runs. */
  executes?: string;
}

/** The parser rejected the text. Never guessed around: a read-only session refuses it. */
export class SqlSyntaxError extends Error {
  override readonly name = 'SqlSyntaxError';
  constructor(message: string, readonly position: number | undefined) {
    super(message);
  }
}

export interface ClassifyOptions {
  /** Prepared statements this session saw prepared (SQL PREPARE or protocol Parse), by name. */
  prepared?: ReadonlyMap<string, StatementClass>;
}

type Node = Record<string, unknown>;

const WRITE_NODES: Record<string, string> = {
  InsertStmt: 'INSERT writes rows',
  UpdateStmt: 'UPDATE writes rows',
  DeleteStmt: 'DELETE writes rows',
  MergeStmt: 'MERGE writes rows',
};
const TOP_LEVEL_WRITES: Record<string, string> = {
  ...WRITE_NODES,
  TruncateStmt: 'TRUNCATE deletes every row',
  RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW rewrites a view',
};
/** Statements with no effect on data or on the session's read-only setting. */
const HARMLESS: Record<string, [StatementKind, string]> = {
  VariableShowStmt: ['read', 'SHOW reads a setting'],
  FetchStmt: ['read', 'FETCH / MOVE reads from a cursor declared earlier'],
  ClosePortalStmt: ['other', 'CLOSE ends a cursor'],
  DeallocateStmt: ['other', 'DEALLOCATE forgets a prepared statement'],
  ListenStmt: ['other', 'LISTEN only receives notifications'],
  UnlistenStmt: ['other', 'UNLISTEN only stops receiving notifications'],
  ConstraintsSetStmt: ['transaction', 'SET CONSTRAINTS only defers checks'],
};
const REFUSED_OTHER: Record<string, string> = {
  CallStmt: 'CALL runs a procedure, which may write',
  DoStmt: 'DO runs a code block, which may write',
  LockStmt: 'LOCK takes table locks that block writers',
  VacuumStmt: 'VACUUM / ANALYZE maintains tables',
  ClusterStmt: 'CLUSTER rewrites a table',
  ReindexStmt: 'REINDEX rebuilds indexes',
  CheckPointStmt: 'CHECKPOINT forces a checkpoint',
  LoadStmt: 'LOAD loads a shared library',
  // Another session may act on a notification: it is a write to the outside world.
  NotifyStmt: 'NOTIFY signals other sessions',
};
/** Settings whose change would undo the upstream read-only defence or the role the policy mapped. */
const READ_ONLY_SETTINGS = new Set(['default_transaction_read_only', 'transaction_read_only']);
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization', 'session_replication_role']);
const TRUE_WORDS = new Set(['on', 'true', 'yes', '1']);
const DDL_NODE = /^(Create|Alter|Drop|Grant|Rename|Comment|SecLabel|Reassign|Import|Define|Composite|Index|View|Rule|ReplicaIdentity)/;

let loaded: Promise<void> | undefined;
/** Loads the parser's WASM once; classify calls await it. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/** The only key of a parse-tree node wrapper ({ SelectStmt: {...} } → ['SelectStmt', {...}]). */
function unwrap(node: unknown): [string, Node] {
  const [entry] = Object.entries(node as Node);
  if (!entry) return ['', {}];
  return [entry[0], entry[1] as Node];
}

/** An A_Const's value as text (`on`, `1`, `true`), or undefined for anything that is not a constant. */
function constantText(node: unknown): string | undefined {
  const [kind, c] = unwrap(node);
  if (kind === 'A_Const') {
    if ('sval' in c) return String((c.sval as Node).sval ?? '');
    if ('ival' in c) return String((c.ival as Node).ival ?? 0);
    if ('boolval' in c) return (c.boolval as Node).boolval === true ? 'true' : 'false';
    return undefined;
  }
  if (kind === 'String') return String(c.sval ?? '');
  if (kind === 'Integer') return String(c.ival ?? 0);
  if (kind === 'Boolean') return c.boolval === true ? 'true' : 'false';
  return undefined;
}

const truthy = (text: string | undefined) => text !== undefined && TRUE_WORDS.has(text.toLowerCase());

/**
 * Everything inside a statement that makes it more than a read: a data-modifying CTE, row
 * locks, SELECT INTO, or a set_config() that could switch the read-only defence off.
 */
function hiddenEffect(tree: unknown): string | undefined {
  if (Array.isArray(tree)) {
    for (const item of tree) {
      const found = hiddenEffect(item);
      if (found) return found;
    }
    return undefined;
  }
  if (tree === null || typeof tree !== 'object') return undefined;
  for (const [key, value] of Object.entries(tree as Node)) {
    if (key in WRITE_NODES) return `a data-modifying statement inside a query (${WRITE_NODES[key]})`;
    if (key === 'lockingClause' && Array.isArray(value) && value.length > 0) return 'SELECT … FOR UPDATE / SHARE locks rows';
    if (key === 'intoClause') return 'SELECT … INTO creates a table';
    if (key === 'FuncCall') {
      const call = value as Node;
      const name = (call.funcname as unknown[] | undefined)?.map(constantText).at(-1)?.toLowerCase();
      if (name === 'set_config') {
        const setting = constantText((call.args as unknown[] | undefined)?.[0])?.toLowerCase();
        if (setting === undefined || READ_ONLY_SETTINGS.has(setting) || IDENTITY_SETTINGS.has(setting)) {
          return `set_config() of ${setting ?? 'a computed setting name'} could lift the read-only session`;
        }
      }
    }
    const found = hiddenEffect(value);
    if (found) return found;
  }
  return undefined;
}

/** A query that may run in a read-only session only if nothing inside it writes. */
function query(kind: StatementKind, reason: string, tree: unknown): Omit<StatementClass, 'text'> {
  const effect = hiddenEffect(tree);
  return effect ? { kind: 'write', reason: effect, readOnly: false } : { kind, reason, readOnly: true };
}

function classifyTransaction(stmt: Node): Omit<StatementClass, 'text'> {
  const kind = String(stmt.kind ?? '');
  if (kind === 'TRANS_STMT_PREPARE' || kind === 'TRANS_STMT_COMMIT_PREPARED' || kind === 'TRANS_STMT_ROLLBACK_PREPARED') {
    return { kind: 'transaction', reason: 'two-phase commit can finish a transaction that wrote', readOnly: false };
  }
  for (const option of (stmt.options as unknown[] | undefined) ?? []) {
    const [, def] = unwrap(option);
    if (def.defname === 'transaction_read_only' && !truthy(constantText(def.arg))) {
      return { kind: 'transaction', reason: 'a READ WRITE transaction', readOnly: false };
    }
  }
  return { kind: 'transaction', reason: 'transaction control', readOnly: true };
}

function classifySet(stmt: Node): Omit<StatementClass, 'text'> {
  const kind = String(stmt.kind ?? '');
  const name = String(stmt.name ?? '').toLowerCase();
  const verb = kind.startsWith('VAR_RESET') ? 'RESET' : 'SET';
  if (kind === 'VAR_RESET_ALL') return { kind: 'set', reason: 'RESET ALL would reset default_transaction_read_only', readOnly: false };
  if (kind === 'VAR_SET_MULTI') {
    // SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION: options like BEGIN's.
    const verdict = classifyTransaction({ options: stmt.args });
    return verdict.readOnly ? { kind: 'set', reason: `SET ${name} of harmless options`, readOnly: true } : { kind: 'set', reason: `SET ${name} READ WRITE`, readOnly: false };
  }
  if (READ_ONLY_SETTINGS.has(name)) {
    const args = (stmt.args as unknown[] | undefined) ?? [];
    if (kind === 'VAR_SET_VALUE' && args.length === 1 && truthy(constantText(args[0]))) return { kind: 'set', reason: `SET ${name} = on keeps the session read-only`, readOnly: true };
    return { kind: 'set', reason: `${verb} ${name} would lift the read-only session`, readOnly: false };
  }
  if (IDENTITY_SETTINGS.has(name)) {
    // RESET ROLE returns to the role the policy mapped; anything else would choose another.
    if (verb === 'RESET' && name === 'role') return { kind: 'set', reason: 'RESET ROLE returns to the mapped role', readOnly: true };
    return { kind: 'set', reason: `${verb} ${name} would switch away from the role the policy mapped`, readOnly: false };
  }
  return { kind: 'set', reason: `${verb} ${name || 'a setting'}`, readOnly: true };
}

function classifyExplain(stmt: Node): Omit<StatementClass, 'text'> {
  const analyze = ((stmt.options as unknown[] | undefined) ?? []).map(unwrap).find(([, d]) => d.defname === 'analyze')?.[1];
  // EXPLAIN only plans; EXPLAIN ANALYZE runs the statement, so it is what the statement is.
  const runs = analyze !== undefined && (analyze.arg === undefined || !['false', 'off', 'no', '0'].includes(constantText(analyze.arg)?.toLowerCase() ?? ''));
  if (!runs) return { kind: 'read', reason: 'EXPLAIN plans without running', readOnly: true };
  const inner = classifyNode(stmt.query);
  return { ...inner, reason: `EXPLAIN ANALYZE runs it: ${inner.reason}` };
}

/** One statement's class, free of session state (EXECUTE is resolved afterwards against the session's prepared statements). */
function classifyNode(node: unknown): Omit<StatementClass, 'text'> {
  const [type, stmt] = unwrap(node);
  if (type in TOP_LEVEL_WRITES) return { kind: 'write', reason: TOP_LEVEL_WRITES[type]!, readOnly: false };
  if (type in REFUSED_OTHER) return { kind: 'other', reason: REFUSED_OTHER[type]!, readOnly: false };
  const harmless = HARMLESS[type];
  if (harmless) return { kind: harmless[0], reason: harmless[1], readOnly: true };
  switch (type) {
    case 'SelectStmt': return query('read', stmt.valuesLists ? 'VALUES reads' : 'SELECT reads', stmt);
    case 'TransactionStmt': return classifyTransaction(stmt);
    case 'VariableSetStmt': return classifySet(stmt);
    case 'ExplainStmt': return classifyExplain(stmt);
    case 'CopyStmt': {
      if (stmt.is_from === true) return { kind: 'copy-in', reason: 'COPY … FROM writes rows', readOnly: false };
      if (stmt.filename !== undefined || stmt.is_program === true) return { kind: 'copy-out', reason: 'COPY … TO a server file or program writes on the database host', readOnly: false };
      return query('copy-out', 'COPY … TO STDOUT reads', stmt.query);
    }
    case 'DeclareCursorStmt': {
      const inner = classifyNode(stmt.query);
      return { ...inner, reason: `DECLARE CURSOR FOR: ${inner.reason}` };
    }
    case 'PrepareStmt': {
      const inner = classifyNode(stmt.query);
      return { ...inner, reason: `PREPARE of: ${inner.reason}`, prepares: String(stmt.name ?? '') };
    }
    case 'ExecuteStmt': return executeOf(String(stmt.name ?? ''), undefined);
    case 'DiscardStmt':
      if (stmt.target === 'DISCARD_ALL') return { kind: 'set', reason: 'DISCARD ALL would reset default_transaction_read_only', readOnly: false };
      return { kind: 'other', reason: 'DISCARD of plans, sequences or temporary tables', readOnly: true };
    default: {
      const label = type.replace(/Stmt$/, '') || 'an empty statement';
      if (DDL_NODE.test(type)) return { kind: 'ddl', reason: `${label} changes the schema or privileges`, readOnly: false };
      return { kind: 'other', reason: `${label} is not known to be read-only`, readOnly: false };
    }
  }
}

const CACHE_ENTRIES = 2000;
/** Longer texts are parsed every time: the cache must not hold megabytes of one client's SQL. */
const CACHE_MAX_TEXT = 16 * 1024;
const cache = new Map<string, readonly StatementClass[]>();

function parseStatements(sql: string): StatementClass[] {
  let tree: { stmts?: { stmt: unknown; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (err) {
    if (sql.trim() === '') return [];
    const details = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    throw new SqlSyntaxError((err as Error).message, details?.cursorPosition);
  }
  // Locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(sql, 'utf8');
  return (tree.stmts ?? []).map((s) => {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    return { ...classifyNode(s.stmt), text: bytes.toString('utf8', start, end).trim() };
  });
}

/** Each statement of `sql` in order, classified. Rejects with SqlSyntaxError when the parser does. */
export async function classifyStatements(sql: string, options: ClassifyOptions = {}): Promise<StatementClass[]> {
  await loadParser();
  let statements = cache.get(sql);
  if (statements) {
    // Refresh its place: the map's order is the eviction order.
    cache.delete(sql);
    cache.set(sql, statements);
  } else {
    statements = parseStatements(sql);
    if (sql.length <= CACHE_MAX_TEXT) {
      if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
      cache.set(sql, statements);
    }
  }
  // EXECUTE depends on the session, so it is resolved after the (session-free) cache.
  return statements.map((s) => (s.executes === undefined ? s : { ...s, ...executeOf(s.executes, options.prepared) }));
}

/** EXECUTE runs what was prepared under the name; a name the session never saw prepared is refused. */
function executeOf(name: string, prepared: ClassifyOptions['prepared']): Omit<StatementClass, 'text'> {
  const known = prepared?.get(name);
  if (!known) return { kind: 'other', reason: `EXECUTE of "${name}", a prepared statement this session did not see prepared`, readOnly: false, executes: name };
  return { kind: known.kind, reason: `EXECUTE of "${name}": ${known.reason}`, readOnly: known.readOnly, executes: name };
}

export type ReadOnlyVerdict =
  | { allow: true; statements: StatementClass[] }
  /** `sqlstate`: 42501 for a statement refused by the rule, 42601 for text that does not parse. */
  | { allow: false; statements: StatementClass[]; index: number; statement?: StatementClass; reason: string; sqlstate: '42501' | '42601' };

/** Whether a read-only session may run `sql`: all of it, or none (a refusal names the first offending statement). */
export async function readOnlyVerdict(sql: string, options: ClassifyOptions = {}): Promise<ReadOnlyVerdict> {
  let statements: StatementClass[];
  try {
    statements = await classifyStatements(sql, options);
  } catch (err) {
    if (!(err instanceof SqlSyntaxError)) throw err;
    return { allow: false, statements: [], index: -1, reason: `the statement could not be parsed, so it is not run (${err.message})`, sqlstate: '42601' };
  }
  const index = statements.findIndex((s) => !s.readOnly);
  if (index < 0) return { allow: true, statements };
  const statement = statements[index]!;
  return { allow: false, statements, index, statement, reason: statement.reason, sqlstate: '42501' };
}
