// The SSH host CA, public like the user CA: ssh clients trust every ssh socket's host key
// through one known_hosts line, `@cert-authority *.<domain> <key>`, that this route spells out.
import { z } from 'zod';
import type { SshCertificateAuthority } from '../ca/index.js';
import type { RouteTable } from './routes.js';

/** The known_hosts line that trusts host certificates of `ca` for every socket host under `domain`. */
export function knownHostsLine(ca: SshCertificateAuthority, domain: string): string {
  return `@cert-authority *.${domain} ${ca.publicKey()}`;
}

export function registerSshHostCaApi(routes: RouteTable, options: { sshHostCa: SshCertificateAuthority; domain: string }): void {
  const answer = { public_key: options.sshHostCa.publicKey(), known_hosts: knownHostsLine(options.sshHostCa, options.domain) };
  routes.add({ method: 'GET', url: '/api/v1/ssh/host-ca', summary: 'The SSH host CA that certifies ssh sockets\' host keys, and the known_hosts line that trusts it', auth: 'public',
    response: z.object({ public_key: z.string(), known_hosts: z.string() }),
    handler: async () => answer });
}
