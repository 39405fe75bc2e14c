// Revoked agents, in memory on every node: loaded (revoked ids only, through their index) when
// the feed says `init`, then kept current from the change feed, so a revocation made on any
// node reaches every checker within one poll (500 ms by default) without a read per check.
// Deleted agents count as revoked: what they signed for must stop being accepted too.
import { PosternError } from '../errors.js';
import type { ChangeSource, FeedEvent } from './change-feed.js';
import type { Store } from './types.js';

const PAGE = 1_000;

export class RevokedAgents {
  #revoked = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #loading: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store, private readonly feed: ChangeSource) {}

  /** Subscribes (before loading, so no revocation falls between the load and the feed) and loads. */
  async start(): Promise<void> {
    if (this.#unsubscribe) throw new PosternError('internal', 'RevokedAgents can only be started once');
    this.#unsubscribe = this.feed.subscribe((event) => this.#onFeed(event));
    await this.#loading;
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  has(agentId: string): boolean {
    return this.#revoked.has(agentId);
  }

  /** Every revoked id known here, sorted (the agents' mesh view carries them). */
  ids(): string[] {
    return [...this.#revoked].sort();
  }

  /** Resolves once the events delivered so far are applied (tests and callers that just revoked). */
  settled(): Promise<void> {
    return this.#loading;
  }

  /** Returns nothing: a rejected promise would unsubscribe us; a failed step is seen by start()/settled() and the next event runs anyway. */
  #onFeed(event: FeedEvent): void {
    const step = event.type === 'init' ? () => this.#loadAll() : () => this.#apply(event.changes.filter((c) => c.entity === 'agent'));
    this.#loading = this.#loading.then(step, step);
    this.#loading.catch(() => undefined);
  }

  async #loadAll(): Promise<void> {
    const revoked = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.store.agents.agents.revokedIds({ ...(after !== undefined ? { after } : {}), limit: PAGE });
      for (const id of page) revoked.add(id);
      if (page.length < PAGE) break;
      after = page.at(-1);
    }
    for (const id of this.#revoked) revoked.add(id);
    this.#revoked = revoked;
  }

  async #apply(changes: readonly { entityId: string; op: string }[]): Promise<void> {
    for (const change of changes) {
      if (change.op === 'delete') {
        this.#revoked.add(change.entityId);
        continue;
      }
      if (change.op !== 'update' || this.#revoked.has(change.entityId)) continue;
      const agent = await this.store.agents.agents.get(change.entityId);
      if (!agent || agent.revokedAt !== null) this.#revoked.add(change.entityId);
    }
  }
}
