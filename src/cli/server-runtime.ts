// Composition root of `postern server`: opens the store, loads the CA, bootstraps the admin
// token, and starts the control API and the edge on one TLS port, as the role asks.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ServerSettings } from './server-config.js';
import { dataFiles } from './paths.js';
import { ChangeFeed, RevokedAgents, SnapshotCache, openStore } from '../store/index.js';
import type { Store, Snapshot } from '../store/index.js';
import { PosternError } from '../errors.js';
import { CertificateAuthority, createKeyCipher, loadOrCreateMasterKey } from '../ca/index.js';
import { TunnelHub, decideAnnouncements } from '../tunnel/index.js';
import type { SocketRefusal, TunnelInfo } from '../tunnel/index.js';
import { EdgeServer, IdentityGate, LiveRegistry, SshHostKeys } from '../edge/index.js';
import {
  createApi,
  applyConfiguredProviders,
  loadOrCreateInviteKey,
  loadOrCreateSigningKeys,
  loadOrCreateSshCa,
  loadOrCreateSshHostCa,
  loadOrCreateSshHostKeySeed,
  firstAdminSetupUrl,
  loadOrCreateJwtSvidSigner,
  SessionService,
  createTerminalUpgrade,
} from '../control/index.js';
import { generateApiToken, hashToken, AssertionCache } from '../identity/index.js';
import { compileWithSocketPolicies } from '../policy/index.js';
import type { PolicySet } from '../policy/index.js';
import {
  AuditRecorder,
  Metrics,
  createGeoLookup,
  compileCidrs,
  AuditExporter,
  createWebhookSink,
  createSyslogSink,
  createRecordingSink,
} from '../reporting/index.js';
import type { NewAuditEvent, AuditSink, AuditEvent } from '../reporting/index.js';
import { hostname } from 'node:os';
import type { ExporterSettings } from './server-config.js';

export const VERSION = '0.1.0';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly caFile: string;
  readonly adminTokenFile: string;
  readonly adminTokenCreated: boolean;
  /** The one-time link that creates the first admin: only while no admin exists, on a node with the control plane. */
  readonly setupUrl?: string;
  close(): Promise<void>;
}

export async function startServer(settings: ServerSettings, logger: Logger): Promise<RunningServer> {
  await mkdir(settings.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(settings.db, { logger });
  const closers: (() => Promise<void>)[] = [() => store.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => logger.warn({ err }, 'error while shutting down'));
  };
  try {
    const cipher = createKeyCipher(await loadOrCreateMasterKey(settings.dataDir));
    const ca = await CertificateAuthority.loadOrCreate(store.secrets, cipher);
    if (settings.role !== 'edge' && settings.identityProviders && settings.identityProviders.length > 0) {
      const applied = await applyConfiguredProviders(store, cipher, settings.identityProviders);
      logger.info({ ...applied, providers: settings.identityProviders.map((p) => p.name) }, 'identity providers from the config file applied');
    }
    const caFile = join(settings.dataDir, dataFiles.ca);
    await writeFile(caFile, ca.certificatePem, { mode: 0o644 });

    const exporters = settings.role === 'edge' ? [] : settings.auditExporters.map((exporter) => startExporter(exporter, store, logger));
    const recorder = new AuditRecorder({ store: store.audit, logger, onWritten: () => exporters.forEach((e) => e.notify()) });
    const metrics = new Metrics();
    // Every event is counted in the metrics and queued for the store.
    const audit = {
      record: (event: NewAuditEvent) => {
        metrics.observe(event);
        recorder.record(event);
      },
      flush: () => recorder.flush(),
    };
    closers.push(async () => {
      await audit.flush();
      await Promise.all(exporters.map((e) => e.stop()));
    });
    const feed = new ChangeFeed(store, { logger });
    const snapshots = new SnapshotCache(store, feed, { logger });
    await feed.start();
    await snapshots.start();
    closers.push(async () => {
      feed.stop();
      snapshots.stop();
    });
    // Revoked agents in memory, from the feed: what the mesh view carries and SVID checks on this node consult.
    const revokedAgents = new RevokedAgents(store, feed);
    await revokedAgents.start();
    closers.push(async () => revokedAgents.stop());

    const { token: adminTokenCreated, file: adminTokenFile } = settings.role === 'edge'
      ? { token: false, file: '(none on an edge-only node)' }
      : await ensureAdminToken(store, settings.dataDir);
    const edgeId = `edge-${randomBytes(3).toString('hex')}`;
    const hub = new TunnelHub({
      edgeId,
      logger,
      // Only connectors bound to a socket serve it; the snapshot says which (never the database).
      authorizeSockets: (connectorId, sockets) => {
        const current = snapshots.current();
        return decideAnnouncements(connectorId, current.connectors.get(connectorId), sockets, (name) => current.sockets.get(name));
      },
    });
    hub.on('refused', (tunnel: TunnelInfo, refusal: SocketRefusal) => audit.record({
      type: 'connector.socket_refused',
      actor: `connector:${tunnel.connectorId}`,
      socket: refusal.name,
      clientIp: tunnel.remoteAddress,
      decision: 'deny',
      reason: refusal.reason,
      details: { connectorId: tunnel.connectorId, connectorName: tunnel.connectorName, tunnel: tunnel.id, code: refusal.code ?? '' },
    }));
    // Recordings of managed sessions stream into the store as they happen; the SSH proxy is
    // handed this sink. Closed after the edge (closers run in reverse), so sessions the edge
    // ends on shutdown still get their last chunk and their end written.
    const recordings = createRecordingSink({ store: store.recordings, audit: (event) => audit.record(event), logger, maxBytes: settings.recordingMaxBytes });
    closers.push(() => recordings.close());
    const live = new LiveRegistry({ edgeId, persistence: store.liveConnections, record: (event) => audit.record(event), logger });
    live.start();
    metrics.gauge('postern_live_connections', 'Long-lived connections held by this edge now', () => live.size);
    metrics.gauge('postern_tunnel_connections', 'Connector tunnel connections to this edge now', () => hub.list().length);
    // Rows of edges that died stop being refreshed; whichever node starts next clears them.
    await store.liveConnections.prune(new Date(Date.now() - 60_000).toISOString()).catch(() => 0);
    closers.push(async () => {
      live.stop();
      await store.liveConnections.remove(live.list().map((entry) => entry.id)).catch(() => undefined);
    });
    // Sockets created, deleted or bound elsewhere after a connector said hello are routed (or not) at once;
    // revoked connectors are cut at once; every live connection is decided again.
    snapshots.onUpdate((next) => {
      hub.reauthorize();
      for (const tunnel of hub.list()) {
        const connector = next.connectors.get(tunnel.connectorId);
        if (!connector || connector.revokedAt) hub.disconnectConnector(tunnel.connectorId);
      }
      live.reevaluate();
    });
    // Kills are changes, so they reach whichever edge holds the connection.
    feed.subscribe((event) => {
      if (event.type !== 'changes') return;
      for (const change of event.changes) {
        if (change.entity === 'kill') live.kill(change.entityId, 'killed by an administrator');
      }
    });

    const publicPort = settings.publicPort ?? settings.listen.port;
    const portSuffix = publicPort === 443 ? '' : `:${publicPort}`;
    const socketOrigin = (name: string) => `https://${name}.${settings.domain}${portSuffix}`;
    const socketUrl = (name: string) => `${socketOrigin(name)}/`;
    const controlOrigin = `https://${settings.domain}${portSuffix}`;

    const signingKeys = await loadOrCreateSigningKeys(store.secrets, cipher);
    const inviteKey = await loadOrCreateInviteKey(store.secrets, cipher);
    const sshCa = await loadOrCreateSshCa(store.secrets, cipher);
    const sshHostCa = await loadOrCreateSshHostCa(store.secrets, cipher);
    const sshHostKeySeed = await loadOrCreateSshHostKeySeed(store.secrets, cipher);
    const assertions = new AssertionCache({ issuer: controlOrigin, keys: () => signingKeys });
    const jwtSvidKeys = (await loadOrCreateJwtSvidSigner(store.secrets, cipher)).jwks();
    const sessions = new SessionService({
      store, sessionTtlMs: settings.sessionTtl, waitForRevision: (revision) => snapshots.waitForRevision(revision, 5_000), audit: (event) => audit.record(event),
    });
    const gate = new IdentityGate({
      controlOrigin,
      idleTimeoutMs: settings.sessionIdle,
      exchangeHandoff: (code, socket) => sessions.exchangeHandoff(code, socket),
      signOut: async (input) => {
        await sessions.signOut(input);
        assertions.forgetSession(input.sessionId);
      },
      view: () => {
        const current = snapshots.current();
        return { grant: (hash) => current.grantsBySecret.get(hash), session: (id) => current.sessionsById.get(id), user: (id) => current.users.get(id) };
      },
    });
    // Last-seen times live in memory on the edge; written back now and then (no change-feed traffic).
    const lastSeenFlush = setInterval(() => {
      for (const [id, at] of gate.drainLastSeen()) void store.sessions.touch(id, new Date(at).toISOString()).catch(() => undefined);
    }, 60_000);
    lastSeenFlush.unref();
    closers.push(async () => clearInterval(lastSeenFlush));

    const geo = await createGeoLookup(settings.geoipFile ? { file: settings.geoipFile } : {});
    const api = settings.role === 'edge' ? undefined : await createApi({
      store, ca, hub: settings.role === 'all' ? hub : undefined, logger, socketUrl, socketOrigin, version: VERSION,
      connectorCertLifetimeMs: settings.connectorCertTtl, sessions, signingKeys: () => signingKeys, inviteKey, sshCa, sshHostCa, controlOrigin, cipher, adminGroup: settings.adminGroup,
      ...(settings.webRoot ? { webRoot: settings.webRoot } : {}),
      agents: { trustDomain: settings.agentTrustDomain ?? settings.domain, certLifetimeMs: settings.agentCertTtl },
      mesh: { revokedAgents, revision: () => feed.revision },
      onSessionRevoked: (id) => assertions.forgetSession(id),
      audit: (event) => audit.record(event), flushAudit: () => audit.flush(), geo, metrics: () => metrics.render(),
      caughtUp: async () => {
        await snapshots.waitForRevision(await store.currentRevision(), 5_000);
      },
    });
    if (api) closers.push(() => api.app.close());
    const setupUrl = api ? await firstAdminSetupUrl({ store, inviteKey, adminGroup: settings.adminGroup, controlOrigin }) : undefined;

    const compiled = new WeakMap<Snapshot, PolicySet>();
    const policiesOf = (snapshot: Snapshot): PolicySet => {
      let set = compiled.get(snapshot);
      if (!set) compiled.set(snapshot, (set = compileWithSocketPolicies(snapshot.policies, snapshot.sockets.values())));
      return set;
    };
    // Services asking through the authorize endpoint: the stored policies only, never a socket's "any signed-in user".
    const storedCompiled = new WeakMap<Snapshot, PolicySet>();
    const storedPoliciesOf = (snapshot: Snapshot): PolicySet => {
      let set = storedCompiled.get(snapshot);
      if (!set) storedCompiled.set(snapshot, (set = compileWithSocketPolicies(snapshot.policies, [])));
      return set;
    };
    const edge = new EdgeServer({
      audit: (event) => audit.record(event),
      live,
      geo,
      trustedProxies: compileCidrs(settings.trustedProxies),
      http: { headerTimeoutMs: settings.headerTimeout, bodyIdleTimeoutMs: settings.bodyIdleTimeout, keepAliveTimeoutMs: settings.keepAliveTimeout, maxStreamsPerClient: settings.maxStreamsPerClient },
      host: settings.listen.host,
      port: settings.listen.port,
      domain: settings.domain,
      ca,
      hub,
      logger,
      view: () => {
        const current = snapshots.current();
        return {
          socket: (name) => current.sockets.get(name),
          connector: (id) => current.connectors.get(id),
          userByEmail: (email) => current.usersByEmail.get(email),
          sessionLive: (id) => {
            const session = current.sessionsById.get(id);
            return session !== undefined && session.revokedAt === null && Date.parse(session.expiresAt) > Date.now();
          },
          policies: () => policiesOf(current),
        };
      },
      identity: {
        gate,
        assertion: (identity, socket) => assertions.get(
          { sessionId: identity.session.id, userId: identity.user.id, email: identity.user.email, groups: identity.user.groups },
          socketOrigin(socket.name),
        ),
      },
      authorize: {
        signingKeys: () => signingKeys, issuer: controlOrigin, controlOrigin, socketOrigin,
        services: {
          trustDomain: settings.agentTrustDomain ?? settings.domain, jwks: () => jwtSvidKeys,
          isAgentRevoked: (id) => revokedAgents.has(id), policies: () => storedPoliciesOf(snapshots.current()),
        },
        sessions: () => {
          const current = snapshots.current();
          return { sessionBySecret: (hash) => current.sessionsBySecret.get(hash), session: (id) => current.sessionsById.get(id), user: (id) => current.users.get(id) };
        },
      },
      recordings,
      ssh: {
        userCa: sshCa,
        hostKeys: new SshHostKeys(sshHostCa, sshHostKeySeed, settings.domain, () => new Date()),
        recordings,
        // The first login pins the upstream's key; a pin made meanwhile by another edge stands.
        pinHostKey: async (name, hostKey) => {
          if (snapshots.current().sockets.get(name)?.upstreamHostKey === null) await store.sockets.update(name, { upstreamHostKey: hostKey });
        },
      },
      ...(api ? { controlHandler: api.handler, controlUpgrade: createTerminalUpgrade({ store, ca, sessions, controlOrigin, adminGroup: settings.adminGroup, logger }) } : {}),
    });
    const address = await edge.start();
    closers.push(() => edge.close());
    const url = `https://${settings.domain}${settings.listen.port === 443 ? '' : `:${settings.publicPort ?? address.port}`}`;
    await writeFile(join(settings.dataDir, dataFiles.server), JSON.stringify({ url, pid: process.pid, caFile, role: settings.role }, null, 2) + '\n', { mode: 0o600 });
    logger.info({ url, role: settings.role, db: store.dialect, edgeId }, 'postern server started');
    return { url, port: address.port, caFile, adminTokenFile, adminTokenCreated, ...(setupUrl ? { setupUrl } : {}), close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** One configured exporter, resuming from its cursor in the store. */
function startExporter(settings: ExporterSettings, store: Store, logger: Logger): AuditExporter {
  let sink: AuditSink;
  if (settings.kind === 'webhook') {
    const secret = settings.secret_env === undefined ? undefined : process.env[settings.secret_env];
    if (settings.secret_env !== undefined && !secret) throw new PosternError('config_invalid', `audit_exporters: ${settings.name}: the environment variable ${settings.secret_env} (secret_env) is not set`);
    sink = createWebhookSink({ url: settings.url, ...(settings.format ? { format: settings.format } : {}), ...(secret ? { secret } : {}) });
  } else {
    sink = createSyslogSink(settings.url, { hostname: hostname(), ...(settings.facility ? { facility: settings.facility } : {}) });
  }
  const exporter = new AuditExporter({
    name: settings.name,
    source: { list: async (query) => (await store.audit.list(query)) as unknown as AuditEvent[] },
    cursors: { get: (name) => store.audit.cursor(name), set: (name, id) => store.audit.setCursor(name, id) },
    sink,
    logger,
  });
  exporter.start();
  return exporter;
}

/** Makes sure `<dataDir>/admin.token` holds a valid admin token, minting one when it does not. */
async function ensureAdminToken(store: Store, dataDir: string): Promise<{ token: boolean; file: string }> {
  const file = join(dataDir, dataFiles.adminToken);
  const existing = await readFile(file, 'utf8').then((text) => text.trim(), () => undefined);
  if (existing) {
    const record = await store.apiTokens.findByHash(hashToken(existing));
    if (record && !record.revokedAt && record.role === 'admin') return { token: false, file };
  }
  const token = generateApiToken();
  await store.apiTokens.create({ name: 'first-admin', tokenHash: hashToken(token), role: 'admin', scopes: ['admin'] });
  await writeFile(file, token + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return { token: true, file };
}
