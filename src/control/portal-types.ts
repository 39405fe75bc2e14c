// What the user portal's API answers (`/api/v1/me/apps`, `/api/v1/me/sessions`), as zod schemas
// and their types, which the dashboard imports with `import type`. No server imports here.
import { z } from 'zod';
import { signInView } from './dashboard-types.js';

export const appCommand = z.object({
  /** What the command is for, e.g. "Once: let ssh reach Postern sockets". */
  label: z.string(),
  command: z.string(),
});

export const appView = z.object({
  name: z.string(),
  type: z.enum(['http', 'https', 'tls', 'ssh', 'postgres']),
  description: z.string(),
  /** `policy`: a policy (or the socket's allow-list) lets this person in now; `public`: the socket asks no one to sign in. */
  access: z.enum(['policy', 'public']),
  /** HTTP sockets: the link to open. */
  url: z.string().optional(),
  /** tls and ssh sockets: what to run, as the README shows it. */
  commands: z.array(appCommand),
  /** ssh sockets: the logins the policies allow this person now. */
  logins: z.array(z.string()).optional(),
  /** Managed ssh sockets: the dashboard's web terminal. */
  terminal: z.string().optional(),
  /** postgres sockets: the database a session opens when the client names none. */
  database: z.string().optional(),
});

export const appList = z.object({
  apps: z.array(appView),
  /** Present when there may be more: pass it as `?after=` for the next page. */
  next: z.string().optional(),
});

export const mySessionView = signInView.extend({
  lastSeenAt: z.string(),
  /** The sign-in this request came with. */
  current: z.boolean(),
});

export const mySessionList = z.object({
  sessions: z.array(mySessionView),
  /** Present when there may be more: pass it as `?before=` for the next (older) page. */
  next: z.string().optional(),
});

export type AppCommand = z.infer<typeof appCommand>;
export type AppView = z.infer<typeof appView>;
export type AppList = z.infer<typeof appList>;
export type MySessionView = z.infer<typeof mySessionView>;
export type MySessionList = z.infer<typeof mySessionList>;
