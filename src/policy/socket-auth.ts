// The older per-socket allow-list settings (cloudauth with allowed email domains and
// addresses) expressed as an ordinary policy attached to that socket, so one engine decides;
// and the policy set of a snapshot: stored policies plus those, compiled together.
import { compilePolicies } from './compile.js';
import type { PolicySet } from './compile.js';
import type { PolicyDocument, Rule } from './types.js';

export interface SocketAuthSettings {
  readonly name: string;
  /** With a type, the rules cover only what that socket carries (HTTP requests, or TLS connects), never SSH logins. */
  readonly type?: string;
  readonly auth: { readonly cloudauth: boolean; readonly allowedEmailDomains: readonly string[]; readonly allowedEmailAddresses: readonly string[] };
}

/** A socket as the policy set needs it. */
export interface PolicySocket extends SocketAuthSettings {
  readonly type: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** A socket's namespace is its `namespace` tag (policies of `corp` cover sockets tagged `corp/...`). */
export function socketNamespace(socket: { readonly tags: Readonly<Record<string, string>> }): string {
  return socket.tags.namespace ?? '';
}

/**
 * Stored policies and the sockets' allow-list policies, compiled together. A `tls` socket
 * always requires a Postern certificate, so without an allow-list it behaves like a sign-in
 * socket that lets any active user in.
 */
export function compileWithSocketPolicies(stored: readonly { readonly document: unknown; readonly version: number }[], sockets: Iterable<PolicySocket>): PolicySet {
  const inputs = stored.map((record) => ({ document: record.document as PolicyDocument, version: record.version }));
  for (const socket of sockets) {
    const auth = socket.type === 'tls' ? { ...socket.auth, cloudauth: true } : socket.auth;
    const document = socketAuthPolicy({ name: socket.name, type: socket.type, auth });
    if (document) inputs.push({ document: { ...document, namespace: socketNamespace(socket) }, version: 0 });
  }
  return compilePolicies(inputs);
}

/** Undefined without cloudauth; with both lists empty, any signed-in user is allowed. */
export function socketAuthPolicy(socket: SocketAuthSettings): PolicyDocument | undefined {
  const { cloudauth, allowedEmailDomains, allowedEmailAddresses } = socket.auth;
  if (!cloudauth) return undefined;
  const rules: Rule[] = [];
  const what = socket.type === undefined ? {} : { what: socket.type === 'tls' ? { tls: {} } : { http: {} } };
  if (allowedEmailDomains.length > 0) rules.push({ effect: 'allow', who: { domain: allowedEmailDomains.map((d) => d.toLowerCase()) }, ...what });
  if (allowedEmailAddresses.length > 0) rules.push({ effect: 'allow', who: { email: allowedEmailAddresses.map((e) => e.toLowerCase()) }, ...what });
  if (rules.length === 0) rules.push({ effect: 'allow', ...what });
  return { name: `socket-${socket.name}-allow-list`, sockets: [socket.name], rules };
}
