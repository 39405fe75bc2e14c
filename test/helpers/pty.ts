// A real terminal for interactive tests: util-linux `script` runs a command on a fresh pty (sized with
// stty first), the test writes keystrokes to it and reads what the terminal showed; every wait is bounded.
import { spawn } from 'node:child_process';
import { Managed } from './processes.js';
import type { Exit } from './processes.js';
import { withTimeout } from './util.js';

export interface PtyOptions {
  cols?: number;
  rows?: number;
  /** TERM on the pty (ssh sends it in its pty request). */
  term?: string;
  env?: NodeJS.ProcessEnv;
  /** Named in failure messages. */
  name?: string;
}

/** `'it'\''s'`: one argument for `sh -c`, whatever it holds. */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The last `chars` characters of the screen, control characters made visible, for failure messages. */
function visible(text: string, chars = 600): string {
  return JSON.stringify(text.slice(-chars));
}

/** A shell prompt at the end of the screen (`root@host:~# `, `$ `), escape sequences after it ignored. */
export const PROMPT = /[#$%>] (?:\u001b\[[0-9;?]*[a-zA-Z])*$/;

export class Pty {
  private readonly managed: Managed;
  private readonly wakers: (() => void)[] = [];
  readonly exited: Promise<Exit>;

  constructor(command: readonly string[], options: PtyOptions = {}) {
    const { cols = 100, rows = 30, term = 'xterm-256color', env = process.env, name = command[0] ?? 'pty' } = options;
    // script gives the command a controlling terminal; -e: its exit status, -f: flush each write.
    const inner = `stty cols ${cols} rows ${rows}; exec ${command.map(shellQuote).join(' ')}`;
    this.managed = new Managed(`pty ${name}`, spawn('script', ['-qfec', inner, '/dev/null'], { env: { ...env, TERM: term }, stdio: ['pipe', 'pipe', 'pipe'] }));
    this.exited = this.managed.exited;
    const wake = () => this.wakers.splice(0).forEach((fn) => fn());
    this.managed.child.stdout?.on('data', wake);
    void this.exited.then(wake);
  }

  /** Everything the terminal showed so far, escape sequences included. */
  get screen(): string {
    return this.managed.stdout;
  }

  get running(): boolean {
    return this.managed.running;
  }

  get pid(): number {
    return this.managed.pid;
  }

  write(keys: string): void {
    this.managed.child.stdin?.write(keys);
  }

  /** Types `text` one key at a time, as a person does (each key its own read on the far side). */
  async type(text: string, gapMs = 15): Promise<void> {
    for (const key of text) {
      this.write(key);
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  }

  /** Waits (bounded, woken by output) until the screen, from offset `from` on, matches `pattern`. */
  async waitFor(pattern: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.screen.slice(from).match(pattern);
      if (match) return match;
      const left = deadline - Date.now();
      if (!this.running) throw new Error(`${this.managed.name} ended before showing ${pattern}; screen: ${visible(this.screen)}; stderr: ${this.managed.tail()}`);
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on ${this.managed.name}; screen: ${visible(this.screen)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wakers.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Waits for a shell prompt at the end of the screen. */
  waitForPrompt(timeoutMs = 15_000, from = 0): Promise<RegExpMatchArray> {
    return this.waitFor(PROMPT, timeoutMs, from);
  }

  /** Waits (bounded) for the command to end; throws if it is still running after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<Exit> {
    return withTimeout(this.exited, timeoutMs, `${this.managed.name} to end; screen: ${visible(this.screen)}`);
  }

  /** Ends the terminal (SIGTERM, then SIGKILL), which hangs up the command. */
  async close(): Promise<Exit> {
    this.managed.child.stdin?.end();
    return this.managed.stop('SIGTERM', 3_000);
  }
}
