// What the criteria read from one request, derived once per evaluation and only when a
// rule asks (the client address parsed, the country and method upper-cased, the path cut).
import { requestPath } from './glob.js';
import type { RequestPath } from './glob.js';
import { parseIp } from '../ip.js';
import type { IpWords } from '../ip.js';
import type { Action, RequestContext } from './types.js';

export class Facts {
  readonly ctx: Omit<RequestContext, 'action'>;
  readonly action: Action;
  readonly at: number;
  readonly authenticated: boolean;
  private parsedIp: IpWords | null | undefined;
  private country: string | null | undefined;
  private path: RequestPath | undefined;
  private lowerEmail: string | undefined;
  private domain: string | undefined;
  private upperMethod: string | undefined;

  constructor(ctx: Omit<RequestContext, 'action'>, action: Action) {
    this.ctx = ctx;
    this.action = action;
    this.at = ctx.at.getTime();
    this.authenticated = ctx.principal.user !== undefined || ctx.principal.service !== undefined;
  }

  /** The user's email, lower-cased; undefined without a user. */
  email(): string | undefined {
    const user = this.ctx.principal.user;
    if (!user) return undefined;
    if (this.lowerEmail === undefined) this.lowerEmail = user.email.toLowerCase();
    return this.lowerEmail;
  }

  /** The part after the last `@` of the email, lower-cased. */
  emailDomain(): string | undefined {
    const email = this.email();
    if (email === undefined) return undefined;
    if (this.domain === undefined) this.domain = email.slice(email.lastIndexOf('@') + 1);
    return this.domain;
  }

  /** The client address as words; undefined when it does not parse (no CIDR matches it). */
  ip(): IpWords | undefined {
    if (this.parsedIp === undefined) this.parsedIp = parseIp(this.ctx.clientIp) ?? null;
    return this.parsedIp ?? undefined;
  }

  /** Upper-cased ISO code; undefined when the geo lookup did not know. */
  countryCode(): string | undefined {
    if (this.country === undefined) this.country = this.ctx.country ? this.ctx.country.toUpperCase() : null;
    return this.country ?? undefined;
  }

  /** For HTTP actions only: the method upper-cased. */
  method(raw: string): string {
    if (this.upperMethod === undefined) this.upperMethod = raw.toUpperCase();
    return this.upperMethod;
  }

  /** For HTTP actions only. */
  httpPath(raw: string): RequestPath {
    if (this.path === undefined) this.path = requestPath(raw);
    return this.path;
  }
}
