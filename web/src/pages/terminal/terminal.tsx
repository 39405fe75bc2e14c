// The web terminal: xterm.js on the terminal's WebSocket (/api/v1/terminal/<socket>), which the
// server carries to the edge as this person's SSH session, decided, recorded and killable like
// any `ssh` client's. Keystrokes and output travel as binary frames, a resize as one JSON frame.
import '@xterm/xterm/css/xterm.css';
import './terminal.css';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TERMINAL_CLOSE, TerminalResize } from '../../../../src/control/terminal-types.js';
import type { PageProps } from '../../pages.js';
import { useLocation } from '../../router.js';
import { Page } from '../../ui.js';

/** Typed against the server's codes, so a change there fails this build. */
const CLOSE_ENDED: typeof TERMINAL_CLOSE.ended = 1000;
const LOGIN_PATTERN = '[a-zA-Z_][a-zA-Z0-9_.\\-]{0,31}';
const SOCKET_PATTERN = '[a-zA-Z0-9]([a-zA-Z0-9\\-]{0,61}[a-zA-Z0-9])?';
const THEME = { background: '#101722', foreground: '#dfe6ee', cursor: '#dfe6ee' } as const;

type Status = { state: 'connecting' } | { state: 'open' } | { state: 'closed'; code: number; reason: string };

/** `/terminal`: which socket, as which login. */
export function TerminalStartPage() {
  const { navigate } = useLocation();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const socket = String(form.get('socket') ?? '').trim().toLowerCase();
    const login = String(form.get('login') ?? '').trim();
    navigate(`/terminal/${encodeURIComponent(socket)}?login=${encodeURIComponent(login)}`);
  };
  return (
    <Page title="Terminal">
      <p class="muted">A shell on a managed SSH socket, in this browser. Postern decides the login by policy and records the session, as it does for <code>ssh</code>.</p>
      <form class="grid" onSubmit={submit}>
        <label>Socket<input name="socket" required pattern={SOCKET_PATTERN} autocomplete="off" /></label>
        <label>Login<input name="login" required pattern={LOGIN_PATTERN} autocomplete="off" /></label>
        <button type="submit" class="primary">Open terminal</button>
      </form>
    </Page>
  );
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
      navigate(`/terminal/${encodeURIComponent(socket)}?login=${encodeURIComponent(value)}`, { replace: true });
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
