// What the dashboard reads from the API about the caller, as a zod schema (the route validates
// against it and the OpenAPI document shows it) and its TypeScript type, which the web app
// imports with `import type`. No server imports here: the web build reads this file.
import { z } from 'zod';

/** The header a browser's cookie-authenticated change (any method but GET and HEAD) must carry, set to `MeView.csrf`. */
export type CsrfHeaderName = 'x-csrf-token';

export const meView = z.object({
  /** The signed-in person's email; for an API token, `token:<name>` (a token speaks for no one). */
  email: z.string(),
  displayName: z.string().optional(),
  groups: z.array(z.string()),
  /** Whether admin routes are open to the caller (a member of the admin group, or an admin token). */
  admin: z.boolean(),
  kind: z.enum(['token', 'cli', 'browser']),
  /** For a browser only: the value of the CSRF header its changes must send. */
  csrf: z.string().optional(),
});

export type MeView = z.infer<typeof meView>;

/** What the dashboard shows of a sign-in session, wherever it lists one (live sessions, the portal's own sessions). */
export const signInView = z.object({
  id: z.string(),
  kind: z.enum(['browser', 'cli']),
  /** `local`, or the identity provider's name. */
  provider: z.string(),
  clientIp: z.string(),
  userAgent: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
