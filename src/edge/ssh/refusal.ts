// What a person reads when a managed SSH socket refuses something: one line, naming what was
// refused, the socket, and the rule that decided (or, when no rule allowed it, the allow rule
// whose SSH conditions left it out). Pure: decisions and explanations in, text out.
import { explain, ruleLabel, sshChannelLabel } from '../../policy/index.js';
import type { Decision, PolicySet, RequestContext, SshChannel } from '../../policy/index.js';

/** Rule outcomes that mean "this rule covers the person, but not this SSH action". */
const SSH_OUTCOMES = new Set(['what-ssh-login', 'what-ssh-channel', 'what-ssh-command']);

/** The rule to name for a refusal: the deciding one, else the first allow rule that matched all but the SSH part. */
export function refusingRule(context: RequestContext, policies: PolicySet, decision: Decision): string | undefined {
  if (decision.rule) return ruleLabel(decision.rule);
  const near = explain(context, policies).rules.find((r) => r.effect === 'allow' && SSH_OUTCOMES.has(r.outcome));
  return near ? ruleLabel(near) : undefined;
}

/** `postern: port forwarding (local) is not allowed on prod by corp/ssh#1`. */
export function refusalLine(context: RequestContext, policies: PolicySet, decision: Decision): string {
  const action = context.action;
  const what = action.protocol !== 'ssh' ? 'this'
    : action.channel === undefined ? `login ${action.login ?? ''}`.trim()
    : action.command !== undefined && action.channel === 'exec' ? `the command "${truncate(action.command, 80)}"`
    : sshChannelLabel(action.channel as SshChannel);
  const rule = refusingRule(context, policies, decision);
  const by = rule ? `by ${rule}` : decision.reason === 'no-policy' ? '(no policy covers this socket)' : '(no rule allows it)';
  return `postern: ${what} is not allowed on ${context.socket.name} ${by}`;
}

function truncate(text: string, max: number): string {
  const printable = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return printable.length <= max ? printable : `${printable.slice(0, max - 1)}…`;
}

/** Terminal sizes a client may ask for; anything outside is clamped, so a hostile size costs nothing. */
export const MAX_TERMINAL = { cols: 2_000, rows: 1_000, pixels: 16_384 } as const;

export function clampTerminal(size: { cols: number; rows: number; width?: number; height?: number }): { cols: number; rows: number; width: number; height: number } {
  const clamp = (value: number | undefined, max: number, fallback: number) =>
    Number.isInteger(value) && value! > 0 ? Math.min(value!, max) : fallback;
  return {
    cols: clamp(size.cols, MAX_TERMINAL.cols, 80),
    rows: clamp(size.rows, MAX_TERMINAL.rows, 24),
    width: clamp(size.width, MAX_TERMINAL.pixels, 0),
    height: clamp(size.height, MAX_TERMINAL.pixels, 0),
  };
}
