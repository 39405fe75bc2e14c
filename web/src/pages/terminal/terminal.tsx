// The web terminal: xterm.js on the terminal's WebSocket (/api/v1/terminal/<socket>), which the
// server carries to the edge as this person's SSH session, decided, recorded and killable like
// any `ssh` client's. Keystrokes and output travel as binary frames, a resize as one JSON frame.
import '@xterm/xterm/css/xterm.css';
import './terminal.css';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TERMINAL_CLOSE, TerminalResize } from '../../../../src/control/terminal-types.js';
import type { AppList, AppView } from '../../../../src/control/portal-types.js';
import { api, query } from '../../api.js';
import type { PageProps } from '../../pages.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useAction, useResource } from '../../ui.js';

/** Typed against the server's codes, so a change there fails this build. */
const CLOSE_ENDED: typeof TERMINAL_CLOSE.ended = 1000;
const LOGIN_PATTERN = '[a-zA-Z_][a-zA-Z0-9_.\\-]{0,31}';
const SOCKET_PATTERN = '[a-zA-Z0-9]([a-zA-Z0-9\\-]{0,61}[a-zA-Z0-9])?';
const THEME = { background: '#101722', foreground: '#dfe6ee', cursor: '#dfe6ee' } as const;

type Status = { state: 'connecting' } | { state: 'open' } | { state: 'closed'; code: number; reason: string };

/** The portal's apps per page while looking for managed SSH sockets. */
const APPS_PAGE_SIZE = 100;

/** `/terminal`: a button per managed SSH socket and login the policies allow this person now, and a form for any other. */
export function TerminalStartPage() {
  const { navigate } = useLocation();
  const first = useResource<AppList>(`/api/v1/me/apps${query({ limit: APPS_PAGE_SIZE })}`);
  const [later, setLater] = useState<{ apps: AppView[]; next?: string | undefined }>({ apps: [] });
  useEffect(() => setLater({ apps: [] }), [first.data]);
  const more = useAction(async (after: string) => {
    const page = await api<AppList>('GET', `/api/v1/me/apps${query({ limit: APPS_PAGE_SIZE, after })}`);
    setLater((l) => ({ apps: [...l.apps, ...page.apps], next: page.next }));
  });
  const terminals = [...(first.data?.apps ?? []), ...later.apps].filter((app) => app.terminal !== undefined);
  const next = later.apps.length > 0 ? later.next : first.data?.next;
  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const socket = String(form.get('socket') ?? '').trim().toLowerCase();
    const login = String(form.get('login') ?? '').trim();
    navigate(terminalLink(`/terminal/${encodeURIComponent(socket)}`, login));
  };
  return (
    <Page title="Terminal">
      <p class="muted">A shell on a managed SSH socket, in this browser. Postern decides the login by policy and records the session, as it does for <code>ssh</code>.</p>
      <Progress active={first.loading} label="Finding your SSH sockets…" />
      <Problem error={first.error ?? more.error} />
      {first.data && terminals.length === 0 && !next ? <p class="notice">No managed SSH socket is open to you right now.</p> : null}
      <ul class="terminal-sockets" aria-label="SSH sockets">
        {terminals.map((app) => (
          <li class="panel" key={app.name} aria-label={app.name}>
            <h2>{app.name}</h2>
            {app.description ? <p class="muted">{app.description}</p> : null}
            <p class="terminal-logins">
              {(app.logins ?? []).length > 0
                ? app.logins!.map((login) => <Link key={login} class="button" href={terminalLink(app.terminal!, login)}>{login}@{app.name}</Link>)
                : <Link class="button" href={app.terminal!}>Choose a login on {app.name}</Link>}
            </p>
          </li>
        ))}
      </ul>
      {next ? <div class="pager"><button type="button" disabled={more.pending} onClick={() => void more.run(next)}>Load more</button></div> : null}
      <h2>Another socket or login</h2>
      <form class="grid" onSubmit={submit}>
        <label>Socket<input name="socket" required pattern={SOCKET_PATTERN} autocomplete="off" /></label>
        <label>Login<input name="login" required pattern={LOGIN_PATTERN} autocomplete="off" /></label>
        <button type="submit" class="primary">Open terminal</button>
      </form>
    </Page>
  );
}

/** The terminal of `terminal` (the API's `/terminal/<socket>`) as `login`. */
function terminalLink(terminal: string, login: string): string {
  return `${terminal}?${new URLSearchParams({ login })}`;
}

/** `/terminal/<socket>?login=<login>`: the terminal, or a form for the login when the link names none. */
export function TerminalPage({ params }: PageProps) {
  const { search, navigate } = useLocation();
  const socket = params.socket ?? '';
  const login = search.get('login') ?? '';
  const [attempt, setAttempt] = useState(0);
  if (!login) {
    const submit = (event: Event) => {
      event.preventDefault();
      const value = String(new FormData(event.currentTarget as HTMLFormElement).get('login') ?? '').trim();
      navigate(terminalLink(`/terminal/${encodeURIComponent(socket)}`, value), { replace: true });
    };
    return (
      <Page title={`Terminal · ${socket}`}>
        <form class="grid" onSubmit={submit}>
          <label>Login on {socket}<input name="login" required pattern={LOGIN_PATTERN} autocomplete="off" /></label>
          <button type="submit" class="primary">Connect</button>
        </form>
      </Page>
    );
  }
  return (
    <Page title={`Terminal · ${login}@${socket}`}>
      <TerminalView key={`${socket}/${login}/${attempt}`} socket={socket} login={login} reconnect={() => setAttempt((n) => n + 1)} />
    </Page>
  );
}

function TerminalView({ socket, login, reconnect }: { socket: string; login: string; reconnect: () => void }) {
  const screen = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>({ state: 'connecting' });
  const disconnect = useRef<() => void>(() => undefined);

  useEffect(() => {
    const element = screen.current;
    if (!element) return;
    const term = new Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5_000, theme: THEME });
    const fit = new FitAddon();
    term.loadAddon(fit);
    const unmirror = mirrorStyleElements(element);
    term.open(element);
    fit.fit();

    const query = new URLSearchParams({ login, cols: String(term.cols), rows: String(term.rows) });
    const ws = new WebSocket(`wss://${window.location.host}/api/v1/terminal/${encodeURIComponent(socket)}?${query}`);
    ws.binaryType = 'arraybuffer';
    disconnect.current = () => ws.close(CLOSE_ENDED, 'closed in the browser');
    const encoder = new TextEncoder();
    const send = (bytes: Uint8Array) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
    };
    ws.onopen = () => {
      setStatus({ state: 'open' });
      term.focus();
    };
    ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => term.write(typeof event.data === 'string' ? event.data : new Uint8Array(event.data));
    ws.onclose = (event) => setStatus({ state: 'closed', code: event.code, reason: event.reason });
    const typed = term.onData((data) => send(encoder.encode(data)));
    const binary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    const resized = term.onResize(({ cols, rows }) => {
      const message: TerminalResize = { type: 'resize', cols, rows };
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    });
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(element);
    return () => {
      observer.disconnect();
      typed.dispose();
      binary.dispose();
      resized.dispose();
      ws.onclose = null;
      ws.close(CLOSE_ENDED, 'left the page');
      term.dispose();
      unmirror();
    };
  }, [socket, login]);

  return (
    <>
      <div class="terminal-bar">
        <p class="status muted" role="status">{statusLine(status, login, socket)}</p>
        {status.state === 'closed'
          ? <button type="button" onClick={reconnect}>Reconnect</button>
          : <button type="button" class="danger" onClick={() => disconnect.current()}>Disconnect</button>}
      </div>
      {status.state === 'closed' && status.code !== CLOSE_ENDED ? <p class="problem" role="alert">{problemLine(status)}</p> : null}
      <div class="terminal-screen" ref={screen} role="region" aria-label={`Terminal ${login}@${socket}`} />
    </>
  );
}

function statusLine(status: Status, login: string, socket: string): string {
  if (status.state === 'connecting') return `Connecting to ${login}@${socket}…`;
  if (status.state === 'open') return `Connected to ${login}@${socket}`;
  return `Disconnected${status.reason ? `: ${status.reason}` : ''}`;
}

function problemLine(status: { code: number; reason: string }): string {
  if (status.reason) return status.reason;
  // A refused upgrade (signed out, another origin) reaches a browser only as 1006, with no reason.
  return status.code === 1006 ? 'The terminal could not be opened: reload the page (you may have been signed out).' : `The terminal closed (code ${status.code}).`;
}

/**
 * xterm.js writes its theme and cell sizes into <style> elements, which the dashboard's CSP
 * (`style-src 'self'`, no 'unsafe-inline') refuses to apply. The same rules are applied here
 * through constructable stylesheets (CSSOM, which the CSP leaves to the page's own scripts), so
 * no inline style needs allowing. Returns the cleanup.
 */
function mirrorStyleElements(root: HTMLElement): () => void {
  const sheets = new Map<HTMLStyleElement, CSSStyleSheet>();
  const sync = () => {
    const gone = [...sheets].filter(([element]) => !root.contains(element));
    for (const [element] of gone) sheets.delete(element);
    for (const element of root.querySelectorAll('style')) {
      let sheet = sheets.get(element);
      if (!sheet) sheets.set(element, (sheet = new CSSStyleSheet()));
      sheet.replaceSync(element.textContent ?? '');
    }
    const replaced = new Set([...gone.map(([, sheet]) => sheet), ...sheets.values()]);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets.filter((s) => !replaced.has(s)), ...sheets.values()];
  };
  const observer = new MutationObserver(sync);
  observer.observe(root, { subtree: true, childList: true, characterData: true });
  return () => {
    observer.disconnect();
    const mine = new Set(sheets.values());
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => !mine.has(s));
  };
}
