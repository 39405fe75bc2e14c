// SSH channels as policies see them: the words a person reads for each, which `what.ssh` flag
// forbids one, legacy scp told apart from other exec commands, and exec command globs.
import type { Action, SshChannel, SshWhat } from './types.js';

export const SSH_CHANNELS: readonly SshChannel[] = ['shell', 'exec', 'sftp', 'scp', 'local_forward', 'remote_forward', 'agent_forwarding', 'x11'];

const LABELS: Readonly<Record<SshChannel, string>> = {
  shell: 'a shell',
  exec: 'running commands',
  sftp: 'sftp',
  scp: 'scp',
  local_forward: 'port forwarding (local)',
  remote_forward: 'port forwarding (remote)',
  agent_forwarding: 'agent forwarding',
  x11: 'X11 forwarding',
};

/** The words a user reads: "port forwarding (remote) is not allowed on prod". */
export function sshChannelLabel(channel: SshChannel): string {
  return LABELS[channel];
}

export function isSshChannel(value: string): value is SshChannel {
  return (SSH_CHANNELS as readonly string[]).includes(value);
}

/**
 * For each channel a rule forbids, the flag that says so as explanations name it
 * (`port_forwarding.remote`); channels absent from the result are allowed by the rule.
 */
export function forbiddingFlags(ssh: SshWhat): Partial<Record<SshChannel, string>> {
  const flags: Partial<Record<SshChannel, string>> = {};
  for (const channel of ['shell', 'exec', 'sftp', 'scp', 'agent_forwarding', 'x11'] as const) {
    if (ssh[channel] === false) flags[channel] = channel;
  }
  const forwarding = ssh.port_forwarding;
  if (forwarding === false) {
    flags.local_forward = 'port_forwarding';
    flags.remote_forward = 'port_forwarding';
  } else if (typeof forwarding === 'object') {
    if (forwarding.local === false) flags.local_forward = 'port_forwarding.local';
    if (forwarding.remote === false) flags.remote_forward = 'port_forwarding.remote';
  }
  return flags;
}

/** scp's server-side options: -d -p -r -v, and exactly one of -t (receive) or -f (send). */
const SCP_OPTIONS = /^-[dfprtv]+$/;
/**
 * Words a shell takes literally or only expands into file names: anything else (quotes, `$`,
 * `;`, `|`, `&`, redirections, newlines…) could make the line run more than scp, so such a
 * line stays an exec and exec's rules decide it.
 */
const PLAIN_WORD = /^[A-Za-z0-9_\-./~,+:@%=*?[\]^\u0080-\uffff]+$/;

/**
 * Pure: which channel an exec request is: legacy scp server side (`scp -t …`, `scp -f …`, with
 * options such as -r -p -d -v before) is 'scp', anything else 'exec'.
 */
export function sshExecChannel(command: string): 'exec' | 'scp' {
  const words = command.trim().split(/ +/);
  if (words[0] !== 'scp') return 'exec';
  let modes = 0;
  let i = 1;
  let endOfOptions = false;
  for (; i < words.length && words[i]!.startsWith('-'); i++) {
    const word = words[i]!;
    if (word === '--') {
      endOfOptions = true;
      i++;
      break;
    }
    if (!SCP_OPTIONS.test(word)) return 'exec';
    for (const letter of word) if (letter === 't' || letter === 'f') modes++;
  }
  const paths = words.slice(i);
  if (modes !== 1 || paths.length === 0) return 'exec';
  // An option after a path would still be read as one by some getopt implementations.
  return paths.every((word) => PLAIN_WORD.test(word) && (endOfOptions || !word.startsWith('-'))) ? 'scp' : 'exec';
}

const STAR = 42;

/**
 * Whether a command line matches one glob: `*` is any run of characters (spaces and `/`
 * included), everything else literal, and the glob covers the whole line. Linear in practice
 * and at worst glob × line, whatever the client sends (a regular expression with several `.*`
 * can take far longer on a long line).
 */
export function commandGlobMatches(glob: string, line: string): boolean {
  let g = 0;
  let s = 0;
  let star = -1;
  let resume = 0;
  while (s < line.length) {
    if (g < glob.length && glob.charCodeAt(g) === STAR) {
      star = g++;
      resume = s;
    } else if (g < glob.length && glob.charCodeAt(g) === line.charCodeAt(s)) {
      g++;
      s++;
    } else if (star !== -1) {
      g = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob.charCodeAt(g) === STAR) g++;
  return g === glob.length;
}

const MAX_SHOWN = 120;

/** A command line quoted for a one-line explanation, control characters escaped, long lines cut. */
export function quoteCommand(line: string): string {
  return line.length <= MAX_SHOWN ? JSON.stringify(line) : `${JSON.stringify(line.slice(0, MAX_SHOWN))}…`;
}

type SshAction = Extract<Action, { protocol: 'ssh' }>;

/**
 * The SSH action a person describes in words (`policy test --ssh-login --ssh-channel
 * --ssh-command`): a command alone is an exec or an scp, as the edge would see it; a channel
 * that contradicts the command, or a command on a channel without one, is a problem.
 */
export function describedSshAction(words: { login?: string; channel?: string; command?: string }): { ok: SshAction } | { field: 'channel' | 'command'; problem: string } {
  const { login, channel, command } = words;
  if (channel !== undefined && !isSshChannel(channel)) return { field: 'channel', problem: `${JSON.stringify(channel)} is not an SSH channel (one of ${SSH_CHANNELS.join(', ')})` };
  const kind = command === undefined ? undefined : sshExecChannel(command);
  if (kind !== undefined && channel !== undefined && channel !== kind) {
    return { field: 'command', problem: channel === 'exec' || channel === 'scp' ? `${quoteCommand(command!)} is ${kind === 'scp' ? 'an scp command' : 'not an scp command'}: the channel is ${kind}` : `only exec and scp channels have a command (the channel is ${channel})` };
  }
  const decided = channel ?? kind;
  return { ok: { protocol: 'ssh', ...(login === undefined ? {} : { login }), ...(decided === undefined ? {} : { channel: decided }), ...(command === undefined ? {} : { command }) } };
}
