// Building blocks every page shares: loading a resource with progress after half a second,
// problem messages, copy-to-clipboard, and the page frame.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from './api.js';

/** Progress is shown only for what takes longer than this, so fast pages do not flicker. */
const PROGRESS_AFTER_MS = 500;

export interface Resource<T> {
  readonly data: T | undefined;
  readonly error: ApiError | undefined;
  readonly loading: boolean;
  reload(): void;
}

/** GETs `path` (again whenever it changes or reload() is called); the previous data stays on screen while the next loads. */
export function useResource<T>(path: string | null): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: path !== null });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    if (path === null) return;
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api<T>('GET', path, undefined, abort.signal).then(
      (data) => setState({ data, loading: false }),
      (err: unknown) => {
        if (abort.signal.aborted) return;
        setState((s) => ({ ...s, loading: false, error: err instanceof ApiError ? err : new ApiError(0, 'network', String(err)) }));
      },
    );
    return () => abort.abort();
  }, [path, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** An action (a POST, a kill…): its pending state and its error, for buttons and forms. */
export function useAction<A extends unknown[], R>(run: (...args: A) => Promise<R>): { pending: boolean; error: ApiError | undefined; run: (...args: A) => Promise<R | undefined>; clear(): void } {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError>();
  const go = async (...args: A) => {
    setPending(true);
    setError(undefined);
    try {
      return await run(...args);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'error', String(err)));
      return undefined;
    } finally {
      setPending(false);
    }
  };
  return { pending, error, run: go, clear: () => setError(undefined) };
}

/** Visible only once `active` has lasted half a second. */
export function Progress({ active, label = 'Loading…' }: { active: boolean; label?: string }) {
  const [shown, setShown] = useState(false);
  useEffect(() => {
    if (!active) return setShown(false);
    const timer = setTimeout(() => setShown(true), PROGRESS_AFTER_MS);
    return () => clearTimeout(timer);
  }, [active]);
  return shown ? <div class="progress" role="progressbar" aria-label={label}><span />{label}</div> : null;
}

export function Problem({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  return <p class="problem" role="alert">{error.message}{error.code !== 'error' ? <code>{error.code}</code> : null}</p>;
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout>>();
  useEffect(() => () => clearTimeout(timer.current), []);
  const copy = async () => {
    await navigator.clipboard?.writeText(text).catch(() => undefined);
    setCopied(true);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => setCopied(false), 1500);
  };
  return <button type="button" class="copy" onClick={copy}>{copied ? 'Copied' : label}</button>;
}

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · Postern`;
  }, [title]);
  return (
    <section class="page">
      <header class="page-head"><h1>{title}</h1>{actions ? <div class="actions">{actions}</div> : null}</header>
      {children}
    </section>
  );
}
