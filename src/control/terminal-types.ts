// The web terminal's wire contract, shared by the server (src/control/terminal.ts) and the
// dashboard (web/src/pages/terminal, with `import type`): the WebSocket's URL query, the one
// JSON control message, and the close codes. No server imports here: the web build reads it.
import { z } from 'zod';

/** `GET /api/v1/terminal/<socket>?login=…&cols=…&rows=…` upgrades to the terminal's WebSocket. */
export const TERMINAL_PATH = '/api/v1/terminal/';

/** The same bounds the edge clamps a pty request to. */
const cols = z.coerce.number().int().min(1).max(2_000);
const rows = z.coerce.number().int().min(1).max(1_000);

export const terminalQuery = z.object({
  /** The login on the upstream host (what `ssh login@socket` names). */
  login: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'must be a login name such as ana or deploy'),
  cols: cols.default(80),
  rows: rows.default(24),
});

/** Text frames carry only this; terminal bytes travel in binary frames both ways. */
export const terminalResize = z.object({ type: z.literal('resize'), cols, rows }).strict();

export type TerminalQuery = z.infer<typeof terminalQuery>;
export type TerminalResize = z.infer<typeof terminalResize>;

/**
 * Why the WebSocket closed; the close reason carries the line the terminal showed.
 * `postern`: the edge refused or ended the session (policy, kill, sign-in ended, upstream down).
 */
export const TERMINAL_CLOSE = {
  ended: 1000,
  badRequest: 4400,
  postern: 4403,
  socketUnknown: 4404,
  unreachable: 4502,
} as const;

export type TerminalCloseCode = (typeof TERMINAL_CLOSE)[keyof typeof TERMINAL_CLOSE];
