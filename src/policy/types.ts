// The policy engine's contract: documents as people write them, the request context the
// transports build, and the decision (with reasons from a closed set) the evaluator returns.
// Nothing here does I/O; the edge hands in a context and a compiled set, and gets a decision.

export type Effect = 'allow' | 'deny';
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** Who a rule is about. Every list present must match (AND); entries within a list are OR. */
export interface WhoCondition {
  /** Exact addresses, lower-cased. */
  readonly email?: readonly string[];
  /** Email domains (exact, no subdomains), lower-cased. */
  readonly domain?: readonly string[];
  readonly group?: readonly string[];
  /**
   * Workloads by their signed labels (`{ app: payroll, env: prod }`: every label must be
   * present with one of the values given), or, as a list, by SPIFFE id like `spiffe`.
   */
  readonly service?: Readonly<Record<string, string | readonly string[]>> | readonly string[];
  /** Workload identities (`spiffe://…` URIs); a trailing `/*` matches everything below. */
  readonly spiffe?: readonly string[];
  /**
   * The person a service acts for (the Postern assertion it relays): the request needs both a
   * service identity and a signed-in user matching these. A service alone never matches.
   */
  readonly on_behalf_of?: OnBehalfOf;
}

export interface OnBehalfOf {
  readonly email?: readonly string[];
  readonly domain?: readonly string[];
  readonly group?: readonly string[];
}

export interface WhereCondition {
  /** CIDRs or single addresses, IPv4 or IPv6. */
  readonly ip?: readonly string[];
  /** ISO 3166-1 alpha-2, upper-cased; `EU` stands for the EU member states. */
  readonly country?: readonly string[];
  readonly country_not?: readonly string[];
}

export interface WhenCondition {
  /** ISO 8601 instants: the rule applies at or after `after` and before `before`. */
  readonly after?: string;
  readonly before?: string;
  readonly weekdays?: readonly Weekday[];
  /** `HH:MM-HH:MM` local time in `tz`; an end before the start wraps past midnight. */
  readonly time?: string;
  /** IANA time zone for weekdays and time (default UTC). */
  readonly tz?: string;
}

export interface HttpWhat {
  /** Upper-cased; absent = any method. */
  readonly methods?: readonly string[];
  /** Globs over the path without the query: `*` within a segment, `**` across; a trailing `/*` matches below. */
  readonly paths?: readonly string[];
  /** Whether `paths` ignore case; absent = deny rules do (a deny is not dodged by `/ADMIN`), allow rules do not. */
  readonly case_insensitive?: boolean;
}

/** What an SSH channel request asks for; forwards and agent/X11 requests each count as one. */
export type SshChannel = 'shell' | 'exec' | 'sftp' | 'scp' | 'local_forward' | 'remote_forward' | 'agent_forwarding' | 'x11';

export interface SshWhat {
  /** Login users on the host; absent = any. */
  readonly logins?: readonly string[];
  readonly shell?: boolean;
  /** true/false, or globs over the whole command line (`*` matches any run of characters, spaces and `/` included). */
  readonly exec?: boolean | readonly string[];
  readonly sftp?: boolean;
  /** Legacy scp (`scp -O`: the `scp -t|-f` command); modern scp runs over the sftp subsystem and is governed by `sftp`. */
  readonly scp?: boolean;
  /** true/false for both directions, or each: local = `ssh -L`/direct-tcpip, remote = `ssh -R`/tcpip-forward. */
  readonly port_forwarding?: boolean | { readonly local?: boolean; readonly remote?: boolean };
  readonly agent_forwarding?: boolean;
  readonly x11?: boolean;
  /** Duration (`90s`, `30m`, `2h`): an allowed session is cut after this long. */
  readonly max_session?: string;
}

export interface TlsWhat {
  /** Whether a TCP/TLS stream may be opened (default true when the block is present). */
  readonly connect?: boolean;
}

export interface DatabaseWhat {
  readonly names?: readonly string[];
  /**
   * The upstream roles this allow rule maps people to: the session logs in as the role the client
   * asked for when it is listed, else as the first. A client asking for a role no allowing rule
   * lists is refused; a rule without `users` maps no role (the connector's default login).
   */
  readonly users?: readonly string[];
  readonly read_only?: boolean;
}

export interface WhatCondition {
  readonly http?: HttpWhat;
  readonly ssh?: SshWhat;
  readonly tls?: TlsWhat;
  readonly database?: DatabaseWhat;
}

export interface Rule {
  /** Optional label; defaults to `<policy>#<index>` in decisions. */
  readonly name?: string;
  readonly effect: Effect;
  readonly who?: WhoCondition;
  readonly where?: WhereCondition;
  readonly when?: WhenCondition;
  readonly what?: WhatCondition;
}

export interface PolicyDocument {
  /** Unique per namespace. */
  readonly name: string;
  /** `org/team/app`; absent or empty = the organisation's root. */
  readonly namespace?: string;
  readonly description?: string;
  /** Socket names this policy attaches to. */
  readonly sockets?: readonly string[];
  /** Or names of services (workloads reached through the agents' mesh) it attaches to. */
  readonly services?: readonly string[];
  /** Or tags (socket tags, service labels; every pair must match). None of the three: the whole namespace. */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * `observe`: what this policy would deny is let through and recorded (`access.would_deny`);
   * absent = `enforce`. See `evaluate` for exactly which denials an observing policy owns.
   */
  readonly mode?: PolicyMode;
  /**
   * ISO 8601 instant: until then, each denial this (enforcing) policy owns also raises
   * `access.alarm` — set when a policy leaves observe mode, so what it starts refusing is seen.
   */
  readonly alarm_until?: string;
  readonly rules: readonly Rule[];
}

export type PolicyMode = 'enforce' | 'observe';

/** Who is asking: a signed-in person, a workload, or both (a user's request relayed by a service). */
export interface Principal {
  readonly user?: { readonly id: string; readonly email: string; readonly groups: readonly string[] };
  /** `labels`: signed by the control plane (JWT-SVID claims, or the declaration it accepted for an X.509-SVID). */
  readonly service?: { readonly id: string; readonly labels?: Readonly<Record<string, string>> };
}

export type Action =
  | { readonly protocol: 'http'; readonly method: string; readonly path: string }
  | {
    readonly protocol: 'ssh';
    readonly login?: string;
    readonly channel?: SshChannel;
    /** exec and scp: the command line as the client sent it. */
    readonly command?: string;
    /** forwards: "host:port" the forward goes to or listens on (only for explanations). */
    readonly target?: string;
  }
  | { readonly protocol: 'tls' }
  | {
    readonly protocol: 'database';
    readonly database?: string;
    readonly write?: boolean;
    /** The upstream role the client asked for (absent: whatever the deciding rule maps). */
    readonly role?: string;
  };

export interface RequestContext {
  /** What is reached: a socket, or (`kind: 'service'`) a service behind an agent, its labels as tags. */
  readonly socket: { readonly kind?: 'socket' | 'service'; readonly name: string; readonly namespace: string; readonly tags: Readonly<Record<string, string>> };
  readonly principal: Principal;
  /** Already the believed client address (trusted proxies resolved by the transport). */
  readonly clientIp: string;
  /** ISO alpha-2 from the geo lookup, when known. */
  readonly country?: string;
  readonly at: Date;
  readonly action: Action;
}

/** Closed set of reasons, kebab-case, so transports and audit classify by code. */
export type DecisionReason =
  | 'rule-allowed'
  | 'rule-denied'
  /** Allowed only because what denied it is in observe mode (see `Decision.wouldDeny`). */
  | 'observed'
  | 'no-rule-allowed'
  | 'no-policy'
  | 'user-unauthenticated';

/** The first condition of a rule that did not match, or `matched`. */
export type RuleOutcome =
  | 'matched'
  | 'who-email'
  | 'who-domain'
  | 'who-group'
  | 'who-service'
  | 'who-spiffe'
  | 'who-on-behalf-of'
  | 'who-unauthenticated'
  | 'where-ip'
  | 'where-country'
  | 'where-country-not'
  | 'where-country-unknown'
  | 'when-after'
  | 'when-before'
  | 'when-weekday'
  | 'when-time'
  | 'what-protocol'
  | 'what-http-method'
  | 'what-http-path'
  | 'what-ssh-login'
  | 'what-ssh-channel'
  | 'what-ssh-command'
  | 'what-tls-connect'
  | 'what-database-name'
  | 'what-database-write'
  | 'what-database-user';

export interface RuleRef {
  readonly policy: string;
  readonly namespace: string;
  /** The rule's name or `<policy>#<index>` (1-based). */
  readonly rule: string;
  readonly effect: Effect;
}

export interface RuleExplanation extends RuleRef {
  readonly outcome: RuleOutcome;
  /** A sentence a person reads: "weekday sat is not one of mon, tue, wed, thu, fri". */
  readonly detail: string;
}

export interface Decision {
  readonly effect: Effect;
  readonly reason: DecisionReason;
  /** The rule that decided (absent for no-rule-allowed / no-policy). */
  readonly rule?: RuleRef;
  /** One line for audit records and 403 pages: "denied by rule corp/no-writes-from-abroad". */
  readonly summary: string;
  /** For an allowed SSH session: cut it after this many ms (the smallest max_session of the allowing rules). */
  readonly maxSessionMs?: number;
  /** For an allowed database session: only reads. */
  readonly readOnly?: boolean;
  /** For an allowed database session: the upstream role it logs in as (see DatabaseWhat.users). */
  readonly databaseRole?: string;
  /**
   * The next instant at which a time condition of an applicable rule changes (a window opens or
   * closes): a long-lived connection must be decided again then. Absent when no time condition applies.
   */
  readonly recheckAt?: Date;
  /** On an allow: the decision enforcing the observing policies would have made instead. */
  readonly wouldDeny?: WouldDeny;
  /** On a deny: a policy that left observe mode recently owns it (its `alarm_until` has not passed). */
  readonly alarm?: { readonly policy: string; readonly namespace: string };
}

export interface WouldDeny {
  readonly reason: 'rule-denied' | 'no-rule-allowed';
  /** The observing deny rule (absent when the denial is the default: no rule allows). */
  readonly rule?: RuleRef;
  /** `would be denied by rule corp/web#no-admin` or `would be denied: no rule allows this`. */
  readonly summary: string;
}

export interface Explanation extends Decision {
  /** Every applicable rule in evaluation order, with its outcome. */
  readonly rules: readonly RuleExplanation[];
}

/** A stored policy as the engine receives it from the snapshot. */
export interface PolicyRecordInput {
  readonly document: PolicyDocument;
  readonly version: number;
}
