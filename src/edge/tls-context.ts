// Server certificates by SNI: one per exact host name, issued by Postern's CA on first use
// and cached; names we do not serve get the default certificate (no signing for strangers).
import tls from 'node:tls';
import type { CertificateAuthority } from '../ca/index.js';
import { routeHost } from './routing.js';

const MAX_CONTEXTS = 10_000;

export class SniContexts {
  private readonly contexts = new Map<string, { context: tls.SecureContext; notAfter: number }>();

  constructor(private readonly ca: CertificateAuthority, private readonly domain: string, private readonly now: () => Date = () => new Date()) {}

  async contextFor(servername: string): Promise<tls.SecureContext> {
    const name = servername.toLowerCase();
    const target = routeHost(name, this.domain).kind === 'unknown' ? this.domain : name;
    const cached = this.contexts.get(target);
    if (cached && cached.notAfter - this.now().getTime() > 24 * 3600_000) return cached.context;
    const credentials = await this.ca.serverCredentials(target);
    const context = tls.createSecureContext({ key: credentials.keyPem, cert: `${credentials.certPem.trim()}\n${this.ca.certificatePem.trim()}\n`, ca: this.ca.certificatePem });
    if (this.contexts.size >= MAX_CONTEXTS) this.contexts.delete(this.contexts.keys().next().value!);
    this.contexts.set(target, { context, notAfter: credentials.notAfter.getTime() });
    return context;
  }

  sniCallback(): (servername: string, callback: (err: Error | null, ctx?: tls.SecureContext) => void) => void {
    return (servername, callback) => {
      this.contextFor(servername).then((ctx) => callback(null, ctx), (err: Error) => callback(err));
    };
  }
}
