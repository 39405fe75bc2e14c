// `what`: per protocol. A rule with a `what` block covers only the protocols it has a block
// for. HTTP: methods and path globs (ambiguous paths fail closed: never allowed by a path
// rule, always caught by a deny path rule). SSH: logins, channel flags (false forbids, absent
// allows; an action without login or channel, decided before they are known, passes them) and
// exec command globs (an exec without its command line fails them). TLS: connect. Database:
// names, read-only and the roles an allow rule maps people to.
import type { Facts } from '../facts.js';
import { compilePathGlobs } from '../glob.js';
import { commandGlobMatches, forbiddingFlags, quoteCommand, sshChannelLabel } from '../ssh-channel.js';
import type { Effect, RuleOutcome, WhatCondition } from '../types.js';
import { listText } from './condition.js';
import type { Condition, Criterion } from './condition.js';

export function compileWhat(block: WhatCondition, effect: Effect): Condition {
  const { http, ssh, tls, database } = block;
  const methods = http?.methods ? new Set(http.methods.map((m) => m.toUpperCase())) : undefined;
  const paths = http?.paths ? compilePathGlobs(http.paths, http.case_insensitive ?? effect === 'deny') : undefined;
  const logins = ssh?.logins ? new Set(ssh.logins) : undefined;
  const forbidden = ssh ? forbiddingFlags(ssh) : {};
  const commands = Array.isArray(ssh?.exec) ? (ssh.exec as readonly string[]) : undefined;
  const commandAllowed = (line: string | undefined) => line !== undefined && commands!.some((glob) => commandGlobMatches(glob, line));
  const names = database?.names ? new Set(database.names) : undefined;
  const roles = database?.users ? new Set(database.users) : undefined;

  const test = (f: Facts): RuleOutcome => {
    const a = f.action;
    switch (a.protocol) {
      case 'http': {
        if (!http) return 'what-protocol';
        if (methods && !methods.has(f.method(a.method))) return 'what-http-method';
        if (paths) {
          const p = f.httpPath(a.path);
          if (p.ambiguous ? effect === 'allow' : !paths.test(p.path)) return 'what-http-path';
        }
        return 'matched';
      }
      case 'ssh':
        if (!ssh) return 'what-protocol';
        if (logins && a.login !== undefined && !logins.has(a.login)) return 'what-ssh-login';
        if (a.channel === undefined) return 'matched';
        if (forbidden[a.channel] !== undefined) return 'what-ssh-channel';
        if (commands && a.channel === 'exec' && !commandAllowed(a.command)) return 'what-ssh-command';
        return 'matched';
      case 'tls':
        if (!tls) return 'what-protocol';
        return tls.connect === false ? 'what-tls-connect' : 'matched';
      case 'database':
        if (!database) return 'what-protocol';
        if (names && a.database !== undefined && !names.has(a.database)) return 'what-database-name';
        if (database.read_only === true && a.write === true) return 'what-database-write';
        // A role is never the client's free choice: only an allow rule that lists it grants it.
        if (effect === 'allow' && a.role !== undefined && !roles?.has(a.role)) return 'what-database-user';
        return 'matched';
    }
  };

  const detail = (f: Facts, outcome: RuleOutcome): string => {
    const a = f.action;
    const covered = (['http', 'ssh', 'tls', 'database'] as const).filter((p) => block[p] !== undefined);
    switch (outcome) {
      case 'what-protocol': return `the rule has no ${a.protocol} block (it covers ${covered.join(', ')})`;
      case 'what-http-method': return a.protocol === 'http' ? `method ${a.method.toUpperCase()} is not one of ${listText(methods!)}` : outcome;
      case 'what-http-path': {
        if (a.protocol !== 'http') return outcome;
        const p = f.httpPath(a.path);
        return p.ambiguous ? `path ${a.path} is ambiguous (dot segments, encoded slashes, path parameters): an allow rule with paths never matches it` : `path ${p.path} matches none of ${listText(http!.paths!)}`;
      }
      case 'what-ssh-login': return a.protocol === 'ssh' ? `login ${a.login} is not one of ${listText(logins!)}` : outcome;
      case 'what-ssh-channel': return a.protocol === 'ssh' && a.channel ? `${sshChannelLabel(a.channel)} is not allowed (${forbidden[a.channel]}: false)` : outcome;
      case 'what-ssh-command': {
        if (a.protocol !== 'ssh') return outcome;
        const globs = listText(commands!.map((glob) => JSON.stringify(glob)));
        return a.command === undefined ? `no command line given; exec allows only ${globs}` : `command ${quoteCommand(a.command)} matches none of exec: ${globs}`;
      }
      case 'what-tls-connect': return 'connections are not allowed (connect: false)';
      case 'what-database-name': return a.protocol === 'database' ? `database ${a.database} is not one of ${listText(names!)}` : outcome;
      case 'what-database-write': return 'writes are not allowed (read_only: true)';
      case 'what-database-user':
        if (a.protocol !== 'database') return outcome;
        return roles ? `role ${a.role} is not one of ${listText(roles)}` : `role ${a.role} was asked for; the rule maps no role (users)`;
      default: return describeAction(f);
    }
  };
  return { test, detail };
}

function describeAction(f: Facts): string {
  const a = f.action;
  switch (a.protocol) {
    case 'http': return `${a.method.toUpperCase()} ${f.httpPath(a.path).path}`;
    case 'ssh': return `ssh${a.login === undefined ? '' : ` as ${a.login}`}${a.channel === undefined ? '' : `: ${sshActivity(a)}`}`;
    case 'tls': return 'tls connection';
    case 'database': return `database ${a.database ?? '(any)'}${a.role === undefined ? '' : ` as ${a.role}`}${a.write ? ' (write)' : ''}`;
  }
}

/** `running "uptime"`, `port forwarding (local) to db:5432`, `a shell`. */
function sshActivity(a: Extract<Facts['action'], { protocol: 'ssh' }>): string {
  const label = sshChannelLabel(a.channel!);
  if (a.command !== undefined) return `${a.channel === 'scp' ? 'scp' : 'running'} ${quoteCommand(a.command)}`;
  if (a.target !== undefined) return `${label} ${a.channel === 'remote_forward' ? 'listening on' : 'to'} ${a.target}`;
  return label;
}

export const whatCriterion: Criterion = {
  name: 'what',
  compile: (rule) => (rule.what ? compileWhat(rule.what, rule.effect) : undefined),
};
