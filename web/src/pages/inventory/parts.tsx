// Pieces the inventory pages share: a list read page by page through the server's cursor,
// an inline confirmation, a field's own error line, tag badges and the socket form's fields.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, query } from '../../api.js';
import { problemField } from '../../lib/inventory.js';
import { CopyButton } from '../../ui.js';
import './inventory.css';

export const PAGE_SIZE = 50;

export interface PagedList<T> {
  readonly rows: readonly T[];
  readonly more: boolean;
  readonly loading: boolean;
  readonly error: ApiError | undefined;
  loadMore(): void;
  reload(): void;
}

/** Pages of `path` (answers `{ [field]: T[], next? }`): the first on mount and on reload(), the following ones on loadMore(). */
export function usePagedList<T>(path: string, field: string): PagedList<T> {
  const [state, setState] = useState<{ rows: T[]; next?: string; loading: boolean; error?: ApiError }>({ rows: [], loading: true });
  const generation = useRef(0);
  const fetchPage = useCallback((after: string | undefined) => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    api<Record<string, unknown> & { next?: string }>('GET', `${path}${query({ limit: PAGE_SIZE, after })}`).then(
      (page) => {
        if (mine !== generation.current) return;
        const rows = (page[field] ?? []) as T[];
        setState((s) => ({ rows: after === undefined ? rows : [...s.rows, ...rows], ...(page.next !== undefined ? { next: page.next } : {}), loading: false }));
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setState((s) => ({ ...s, loading: false, error: err instanceof ApiError ? err : new ApiError(0, 'network', String(err)) }));
      },
    );
  }, [path, field]);
  useEffect(() => {
    fetchPage(undefined);
    return () => {
      generation.current++;
    };
  }, [fetchPage]);
  const reload = useCallback(() => fetchPage(undefined), [fetchPage]);
  return { rows: state.rows, more: state.next !== undefined, loading: state.loading, error: state.error, loadMore: () => fetchPage(state.next), reload };
}

export function LoadMore({ list }: { list: Pick<PagedList<unknown>, 'more' | 'loading' | 'loadMore'> }) {
  if (!list.more) return null;
  return <div class="pager"><button type="button" onClick={list.loadMore} disabled={list.loading}>Load more</button></div>;
}

/** A destructive button that asks once more, in place. */
export function ConfirmButton({ label, question, onConfirm, pending }: { label: string; question: string; onConfirm: () => void; pending?: boolean }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return <button type="button" class="danger" onClick={() => setAsking(true)}>{label}</button>;
  return (
    <span class="confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button type="button" class="danger" disabled={pending} onClick={() => { setAsking(false); onConfirm(); }}>Yes, {label.toLowerCase()}</button>
      <button type="button" onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}

/** The problem's message under the field it names (`body: name: …`), if it names this one. */
export function FieldError({ error, field }: { error: ApiError | undefined; field: string | readonly string[] }) {
  const named = error ? problemField(error.message) : undefined;
  const fields = typeof field === 'string' ? [field] : field;
  if (!error || !named || !fields.includes(named)) return null;
  return <span class="field-error" id={`error-${fields[0]}`}>{error.message.replace(/^(?:body|query|config): /, '')}</span>;
}

export function Tags({ tags }: { tags: Readonly<Record<string, string>> }) {
  const entries = Object.entries(tags);
  if (entries.length === 0) return <span class="muted">–</span>;
  return <span class="tags">{entries.map(([k, v]) => <span key={k} class="badge">{v ? `${k}=${v}` : k}</span>)}</span>;
}

export function Online({ online, what = 'connector' }: { online: boolean; what?: string }) {
  return <span class={`badge ${online ? 'ok' : 'bad'}`} title={online ? `a ${what} is connected` : `no ${what} is connected`}>{online ? 'online' : 'offline'}</span>;
}

/** Text to copy, with its label and a copy button. */
export function CopyBlock({ label, text }: { label: string; text: string }) {
  return (
    <div class="copy-block">
      <div class="copy-head"><span>{label}</span><CopyButton text={text} label={`Copy ${label.charAt(0).toLowerCase()}${label.slice(1)}`} /></div>
      <pre class="block" aria-label={label}>{text}</pre>
    </div>
  );
}
