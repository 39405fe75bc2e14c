// The older per-socket allow-list settings (cloudauth with allowed email domains and
// addresses) expressed as an ordinary policy attached to that socket, so one engine decides.
import type { PolicyDocument, Rule } from './types.js';

export interface SocketAuthSettings {
  readonly name: string;
  readonly auth: { readonly cloudauth: boolean; readonly allowedEmailDomains: readonly string[]; readonly allowedEmailAddresses: readonly string[] };
}

/** Undefined without cloudauth; with both lists empty, any signed-in user is allowed. */
export function socketAuthPolicy(socket: SocketAuthSettings): PolicyDocument | undefined {
  const { cloudauth, allowedEmailDomains, allowedEmailAddresses } = socket.auth;
  if (!cloudauth) return undefined;
  const rules: Rule[] = [];
  if (allowedEmailDomains.length > 0) rules.push({ effect: 'allow', who: { domain: allowedEmailDomains.map((d) => d.toLowerCase()) } });
  if (allowedEmailAddresses.length > 0) rules.push({ effect: 'allow', who: { email: allowedEmailAddresses.map((e) => e.toLowerCase()) } });
  if (rules.length === 0) rules.push({ effect: 'allow' });
  return { name: `socket-${socket.name}-allow-list`, sockets: [socket.name], rules };
}
