// The inventory pages' pure parts: tag and list fields, the socket filter, what to copy for a
// socket (URL, CLI and ssh commands, sshd lines), the connector YAML a join token goes into,
// groups derived from users, and join-token states. No DOM here, so node:test covers it.
import type { ConnectorView, JoinTokenView, ProviderKind, SocketView, SshHostCaView, SshUserCaView, UserView } from '../../../src/control/inventory-types.js';

const TAG_KEY = /^[a-z0-9_.-]{1,63}$/i;

/** `env=prod, team=ops` (commas or new lines) → tags; every bad pair is named. */
export function parseTags(text: string): { tags: Record<string, string>; errors: string[] } {
  const tags: Record<string, string> = {};
  const errors: string[] = [];
  for (const part of text.split(/[,\n]/).map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (eq < 0) errors.push(`"${part}" is not key=value`);
    else if (!TAG_KEY.test(key)) errors.push(`tag key "${key}" may hold only letters, digits, "_", "." and "-" (1-63)`);
    else if (value.length > 255) errors.push(`tag ${key}: the value is longer than 255 characters`);
    else if (key in tags && tags[key] !== value) errors.push(`tag ${key} is given twice`);
    else tags[key] = value;
  }
  return { tags, errors };
}

export function formatTags(tags: Readonly<Record<string, string>>): string {
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** A list field (commas, spaces or new lines) → its distinct entries, in order. */
export function parseList(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
}

/** `key=value` matches that tag exactly; `key` matches any value of it. */
export function hasTag(tags: Readonly<Record<string, string>>, tag: string): boolean {
  const eq = tag.indexOf('=');
  if (eq < 0) return Object.hasOwn(tags, tag.trim());
  const key = tag.slice(0, eq).trim();
  return Object.hasOwn(tags, key) && tags[key] === tag.slice(eq + 1).trim();
}

/** The sockets whose name, type, upstream, description or tags contain `text` and that carry `tag`. */
export function filterSockets(sockets: readonly SocketView[], filter: { text?: string; tag?: string }): SocketView[] {
  const text = filter.text?.trim().toLowerCase() ?? '';
  const tag = filter.tag?.trim() ?? '';
  return sockets.filter((s) => {
    if (tag && !hasTag(s.tags, tag)) return false;
    if (!text) return true;
    return [s.name, s.type, s.upstream ?? '', s.description, formatTags(s.tags)].some((field) => field.toLowerCase().includes(text));
  });
}

/** Every distinct `key=value` among the sockets, for the tag filter's choices. */
export function tagChoices(sockets: readonly SocketView[]): string[] {
  return [...new Set(sockets.flatMap((s) => Object.entries(s.tags).map(([k, v]) => `${k}=${v}`)))].sort();
}

export interface CopyLine {
  readonly label: string;
  readonly text: string;
}

/** The host a socket is reached at (`grafana.localhost`), from its public URL. */
export function socketHost(socket: Pick<SocketView, 'url'>): string {
  return new URL(socket.url).hostname;
}

/** What a person runs to reach the socket: the URL for http(s); the CLI and ssh for tls and ssh. */
export function connectLines(socket: Pick<SocketView, 'type' | 'url' | 'name'>, controlOrigin: string, localPort = 15000): CopyLine[] {
  if (socket.type === 'http' || socket.type === 'https') return [{ label: 'Open in a browser', text: socket.url }];
  const host = socketHost(socket);
  const edge = new URL(controlOrigin);
  const server = { label: 'Point the Postern CLI at this server', text: `export POSTERN_SERVER=${edge.origin}` };
  if (socket.type === 'ssh') {
    return [
      server,
      { label: 'Once: an ssh_config block that signs your key and trusts the host certificates', text: 'postern client ssh-config >> ~/.ssh/config' },
      { label: 'Connect (the edge records the session)', text: `ssh <login>@${host}` },
    ];
  }
  return [
    server,
    { label: 'A local port for any TCP client', text: `postern client tls --host ${host} --listen 127.0.0.1:${localPort}` },
    { label: 'SSH through the socket (with a Postern SSH certificate)', text: `ssh -o ProxyCommand='postern client tls --host %h' <login>@${host}` },
    { label: 'Check the edge answers for this host (a client certificate is required)', text: `openssl s_client -connect ${edge.hostname}:${edge.port || '443'} -servername ${host}` },
  ];
}

/** The upstream sshd's side: trust Postern's user CA (what `postern socket show` prints). */
export function sshdSetupLines(userCa: SshUserCaView): string {
  return [
    `echo '${userCa.publicKey}' | sudo tee /etc/ssh/postern_user_ca.pub`,
    'sudo mkdir -p /etc/ssh/postern_principals',
    'echo ana@corp.example | sudo tee /etc/ssh/postern_principals/ana   # who may log in as "ana"',
    '# then add to /etc/ssh/sshd_config and reload sshd:',
    ...userCa.sshdConfig,
  ].join('\n');
}

export function knownHostsLine(hostCa: SshHostCaView): string {
  return hostCa.known_hosts;
}

/** A YAML scalar that reads back as exactly `value`. */
function yamlString(value: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(value) && !/^[0-9.:-]+$/.test(value) ? value : JSON.stringify(value);
}

export interface ConnectorSocketDraft {
  readonly name: string;
  readonly type: string;
  readonly upstream: string | null;
}

/** The connector's YAML file for a join token: the server, the token, and the sockets it will serve. */
export function connectorYaml(server: string, token: string, sockets: readonly ConnectorSocketDraft[]): string {
  const lines = [`server: ${yamlString(server)}`, `token: ${yamlString(token)}`, 'credentials: ./connector-credentials.json', 'sockets:'];
  const listed = sockets.length > 0 ? sockets : [{ name: 'my-app', type: 'http', upstream: 'http://127.0.0.1:3000' }];
  for (const s of listed) {
    lines.push(`  - name: ${yamlString(s.name)}`, `    type: ${yamlString(s.type)}`, `    upstream: ${yamlString(s.upstream ?? (s.type === 'http' || s.type === 'https' ? 'http://127.0.0.1:3000' : 'tcp://127.0.0.1:22'))}`);
  }
  return `${lines.join('\n')}\n`;
}

export const CONNECTOR_START_COMMAND = 'postern connector start --config connector.yaml';

export type JoinTokenState = 'used' | 'expired' | 'usable';

export function joinTokenState(token: Pick<JoinTokenView, 'usedAt' | 'expiresAt'>, now: Date): JoinTokenState {
  if (token.usedAt !== null) return 'used';
  return Date.parse(token.expiresAt) <= now.getTime() ? 'expired' : 'usable';
}

/** A connector is online when it holds at least one live tunnel (to this node). */
export function connectorOnline(connector: Pick<ConnectorView, 'tunnels' | 'revokedAt'>): boolean {
  return connector.revokedAt === null && connector.tunnels.length > 0;
}

export interface GroupMembers {
  readonly group: string;
  readonly members: readonly string[];
}

/** Groups are attributes of users: each group with the emails of its members, by name. */
export function groupsOf(users: readonly Pick<UserView, 'email' | 'groups'>[]): GroupMembers[] {
  const byGroup = new Map<string, string[]>();
  for (const user of users) for (const group of user.groups) byGroup.set(group, [...(byGroup.get(group) ?? []), user.email]);
  return [...byGroup].sort(([a], [b]) => a.localeCompare(b)).map(([group, members]) => ({ group, members: members.sort() }));
}

/** The settings each provider kind needs first (the API checks the rest and names what is wrong). */
export function providerConfigTemplate(kind: ProviderKind): Record<string, unknown> {
  if (kind === 'oidc') return { issuer: 'https://accounts.example.com', client_id: '', scopes: ['openid', 'email', 'profile'], groups_claim: 'groups', allowed_email_domains: [] };
  if (kind === 'github') return { client_id: '', groups_from_orgs: false, orgs: [] };
  return { entry_point: 'https://idp.example.com/sso/saml', idp_issuer: 'https://idp.example.com', idp_cert: '-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----', email_attribute: 'email', groups_attribute: 'groups' };
}

/** A settings field's text → an object, or the reason it is not one. */
export function parseConfigJson(text: string): { config: Record<string, unknown> } | { error: string } {
  if (!text.trim()) return { config: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `settings are not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'settings must be a JSON object ({ "key": value, … })' };
  return { config: value as Record<string, unknown> };
}

/** A field name in a problem's detail (`body: name: must be …` → `name`), so the form can show it beside the field. */
export function problemField(detail: string): string | undefined {
  return /^(?:body|query|path|config): ([a-z_][a-z0-9_]*)(?:[.[]|:)/i.exec(detail)?.[1];
}
