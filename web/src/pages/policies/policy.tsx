// One policy in the editor (`/policies/:ref`, `/policies/new`): a plain textarea with a line
// gutter, checked on the server as one types (each problem marked on its line, a click on it moves
// the caret there), Save refused while there are problems, a diff against the stored version,
// the history (view a version, diff it against the current one) and the test panel.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { PolicyCheckAnswer, PolicySourceError, PolicyVersionView, PolicyVersionsAnswer, PolicyView } from '../../../../src/control/policy-types.js';
import { api, ApiError, query } from '../../api.js';
import { diffLines, diffStats } from '../../../../src/line-diff.js';
import { formatTimestamp } from '../../lib/format.js';
import { lineCount, offsetOf, problemText, problemsByLine } from '../../lib/policy-editor.js';
import type { PageProps } from '../../pages.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useAction } from '../../ui.js';
import { TestPanel } from './test-panel.js';
import './policies.css';

const CHECK_AFTER_MS = 350;
const HISTORY_PAGE = 20;
const TEMPLATE = `name: my-policy
sockets: [app]
rules:
  - name: staff
    effect: allow
    who: { group: [staff] }
`;

const policyPath = (ref: string) => `/api/v1/policies/${encodeURIComponent(ref)}`;

/** A save that moves to the policy's own page lands in a new editor: this carries its message there once. */
let savedOnArrival: { ref: string; message: string } | undefined;

/** The server's check of `text`, debounced; `current` is false while the text changed since. */
function useCheck(text: string | undefined): { answer: PolicyCheckAnswer | undefined; current: boolean; error: ApiError | undefined } {
  const [state, setState] = useState<{ text: string; answer: PolicyCheckAnswer } | undefined>();
  const [error, setError] = useState<ApiError>();
  useEffect(() => {
    if (text === undefined) return;
    const abort = new AbortController();
    const timer = setTimeout(() => {
      api<PolicyCheckAnswer>('POST', '/api/v1/policies/check', { text }, abort.signal).then(
        (answer) => { setError(undefined); setState({ text, answer }); },
        (err: unknown) => { if (!abort.signal.aborted) setError(err instanceof ApiError ? err : new ApiError(0, 'network', String(err))); },
      );
    }, CHECK_AFTER_MS);
    return () => { clearTimeout(timer); abort.abort(); };
  }, [text]);
  return { answer: state?.answer, current: state !== undefined && state.text === text, error };
}

function DiffView({ before, after, label }: { before: string; after: string; label: string }) {
  const lines = diffLines(before, after);
  const { added, removed } = diffStats(lines);
  return (
    <section class="panel" role="region" aria-label={label}>
      <h2>{label} <span class="badge ok">+{added}</span> <span class="badge bad">−{removed}</span></h2>
      {added + removed === 0 ? <p class="muted">No changes.</p> : (
        <pre class="block diff">{lines.map((l, i) => (
          <div key={i} class={`diff-line ${l.kind}`}><span class="sign">{l.kind === 'added' ? '+' : l.kind === 'removed' ? '-' : ' '}</span> {l.text}</div>
        ))}</pre>
      )}
    </section>
  );
}

function History({ policyRef, generation, current, onLoad }: { policyRef: string; generation: number; current: string; onLoad: (yaml: string) => void }) {
  const [versions, setVersions] = useState<PolicyVersionView[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [shown, setShown] = useState<{ version: PolicyVersionView; diff: boolean }>();
  const load = useAction(async (cursor?: number) => {
    const page = await api<PolicyVersionsAnswer>('GET', `${policyPath(policyRef)}/versions${query({ order: 'desc', limit: HISTORY_PAGE, cursor })}`);
    setVersions((old) => (cursor === undefined ? page.versions : [...old, ...page.versions]));
    setNext(page.next);
  });
  useEffect(() => { void load.run(); }, [policyRef, generation]);
  return (
    <section class="panel" aria-label="History">
      <h2>History</h2>
      <Progress active={load.pending} />
      <Problem error={load.error} />
      <table>
        <thead><tr><th class="num">Version</th><th>Change</th><th>Author</th><th>When</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version}>
              <td class="num">{v.version}</td>
              <td>{v.document === null ? 'deleted' : v.version === 1 ? 'created' : 'updated'}</td>
              <td>{v.author}</td>
              <td>{formatTimestamp(v.createdAt)}</td>
              <td class="row-actions">
                {v.yaml !== null ? <>
                  <button type="button" onClick={() => setShown({ version: v, diff: false })}>View version {v.version}</button>
                  <button type="button" onClick={() => setShown({ version: v, diff: true })}>Diff version {v.version}</button>
                </> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {next !== null ? <div class="pager"><button type="button" disabled={load.pending} onClick={() => void load.run(next)}>Load more</button></div> : null}
      {shown?.version.yaml ? (
        shown.diff ? <DiffView label={`Version ${shown.version.version} → current`} before={shown.version.yaml} after={current} /> : (
          <section class="panel" role="region" aria-label={`Version ${shown.version.version}`}>
            <h2>Version {shown.version.version} <span class="muted">by {shown.version.author}, {formatTimestamp(shown.version.createdAt)}</span></h2>
            <pre class="block">{shown.version.yaml}</pre>
            <button type="button" onClick={() => onLoad(shown.version.yaml!)}>Load into the editor</button>
          </section>
        )
      ) : null}
    </section>
  );
}

function Gutter({ text, problems, scrollTop }: { text: string; problems: Map<number, PolicySourceError[]>; scrollTop: number }) {
  const ref = useRef<HTMLDivElement>(null);
  // Follows the textarea's scrolling (a DOM property: no inline style under the CSP).
  useEffect(() => { if (ref.current) ref.current.scrollTop = scrollTop; }, [scrollTop]);
  const count = lineCount(text);
  const lines = [];
  for (let n = 1; n <= count; n++) {
    const here = problems.get(n);
    lines.push(<div key={n} class={here ? 'gutter-line has-error' : 'gutter-line'} title={here?.map(problemText).join('\n')}>{n}</div>);
  }
  return <div class="gutter" ref={ref}>{lines}</div>;
}

function Editor({ policyRef }: { policyRef?: string }) {
  const { navigate } = useLocation();
  const [stored, setStored] = useState<PolicyView>();
  const [text, setText] = useState<string | undefined>(policyRef ? undefined : TEMPLATE);
  const [showDiff, setShowDiff] = useState(false);
  const [scrollTop, setScrollTop] = useState(0);
  const [generation, setGeneration] = useState(0);
  const [saved, setSaved] = useState<string | undefined>(() => {
    const message = savedOnArrival?.ref === policyRef ? savedOnArrival?.message : undefined;
    savedOnArrival = undefined;
    return message;
  });
  const [saveProblems, setSaveProblems] = useState<PolicySourceError[]>();
  const area = useRef<HTMLTextAreaElement>(null);
  const loading = useAction(async (ref: string) => {
    const view = await api<PolicyView>('GET', policyPath(ref));
    setStored(view);
    setText(view.yaml);
  });
  useEffect(() => { if (policyRef) void loading.run(policyRef); }, [policyRef]);
  const check = useCheck(text);
  const problems = (check.current ? check.answer?.errors : undefined) ?? saveProblems ?? check.answer?.errors ?? [];
  const byLine = problemsByLine(text ?? '', problems);
  const save = useAction(async (source: string) => {
    // Checked again on save: the last check may be of an older text.
    const verdict = await api<PolicyCheckAnswer>('POST', '/api/v1/policies/check', { text: source });
    if (!verdict.valid) {
      setSaveProblems(verdict.errors);
      return;
    }
    const answer = await api<{ policy: PolicyView; changed: boolean; warnings: string[] }>('PUT', '/api/v1/policies', { text: source });
    const message = answer.changed ? `Saved as version ${answer.policy.version}${answer.warnings.length ? ` (${answer.warnings.join('; ')})` : ''}.` : `No change: still version ${answer.policy.version}.`;
    setSaved(message);
    if (answer.policy.ref !== policyRef) {
      savedOnArrival = { ref: answer.policy.ref, message };
      navigate(`/policies/${encodeURIComponent(answer.policy.ref)}`, { replace: true });
    } else {
      await loading.run(answer.policy.ref);
      setGeneration((g) => g + 1);
    }
  });
  const moveTo = (problem: PolicySourceError) => {
    const el = area.current;
    if (!el || text === undefined) return;
    const offset = offsetOf(text, problem.line, problem.column);
    el.focus();
    el.setSelectionRange(offset, offset);
    const lineHeight = Number.parseFloat(getComputedStyle(el).lineHeight) || 18;
    el.scrollTop = Math.max(0, (problem.line - 3) * lineHeight);
    setScrollTop(el.scrollTop);
  };
  const title = policyRef ?? 'New policy';
  const renamed = policyRef && check.answer?.ref && check.answer.ref !== policyRef ? check.answer.ref : undefined;
  const firstSocket = ((stored?.document.sockets as string[] | undefined) ?? [])[0];
  return (
    <Page title={title} actions={<>
      <Link class="button" href="/policies">All policies</Link>
      {stored ? <button type="button" aria-pressed={showDiff} onClick={() => setShowDiff(!showDiff)}>Diff</button> : null}
      <button type="button" class="primary" disabled={text === undefined || problems.length > 0 || save.pending} onClick={() => { setSaved(undefined); if (text !== undefined) void save.run(text); }}>Save</button>
    </>}>
      <Progress active={loading.pending} />
      <Problem error={loading.error} />
      {stored ? <p class="muted">Version {stored.version}, updated {formatTimestamp(stored.updatedAt)}. The store keeps the document, not its comments: the editor shows it as YAML.</p> : null}
      {text !== undefined ? <>
        <div class={`editor${problems.length ? ' invalid' : ''}`}>
          <Gutter text={text} problems={byLine} scrollTop={scrollTop} />
          <textarea ref={area} aria-label="Policy YAML" spellcheck={false} wrap="off" value={text}
            onInput={(e) => { setText(e.currentTarget.value); setSaveProblems(undefined); setSaved(undefined); }}
            onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} />
        </div>
        <div class="editor-status">
          {problems.length ? <p class="problem" role="alert">{problems.length === 1 ? '1 problem' : `${problems.length} problems`}: Save is refused until {problems.length === 1 ? 'it is' : 'they are'} fixed.</p>
            : check.current ? <p class="muted">No problems.</p> : <p class="muted">Checking…</p>}
          {problems.length ? (
            <ul class="problems" aria-label="Problems">
              {problems.map((p, i) => <li key={i}><button type="button" onClick={() => moveTo(p)}>{problemText(p)}</button></li>)}
            </ul>
          ) : null}
          {renamed ? <p class="notice">This text names policy {renamed}: saving writes that policy, not {policyRef}.</p> : null}
          <Problem error={check.error ?? save.error} />
          {saved ? <p class="notice" role="status">{saved}</p> : null}
        </div>
        {showDiff && stored ? <DiffView label="Diff against the stored version" before={stored.yaml} after={text} /> : null}
      </> : null}
      {policyRef && stored ? <History policyRef={policyRef} generation={generation} current={stored.yaml} onLoad={(yaml) => setText(yaml)} /> : null}
      <TestPanel socket={firstSocket ?? ''} />
    </Page>
  );
}

export function PolicyPage({ params }: PageProps) {
  return <Editor key={params.ref} policyRef={params.ref} />;
}

export function NewPolicyPage() {
  return <Editor />;
}
