// The one compliance suite every Store backend passes: runStoreSuite(t, makeStore) runs each
// case as a subtest on a fresh store from makeStore and always cleans it up.

import type { TestContext } from 'node:test';
import { auditCases } from './cases-audit.js';
import { bindingCases } from './cases-bindings.js';
import { deviceCases } from './cases-device.js';
import { externalIdentityCases } from './cases-external-identities.js';
import { feedCases } from './cases-feed.js';
import { identityCases } from './cases-identity.js';
import { providerCases } from './cases-providers.js';
import { recordingCases } from './cases-recordings.js';
import { repoCases } from './cases-repos.js';
import { sshSocketCases } from './cases-ssh-sockets.js';
import type { MakeStore, StoreCase } from './helpers.js';

export type { MakeStore, StoreFixture } from './helpers.js';

export const storeCases: Readonly<Record<string, StoreCase>> = { ...repoCases, ...feedCases, ...identityCases, ...providerCases, ...deviceCases, ...auditCases, ...externalIdentityCases, ...bindingCases, ...recordingCases, ...sshSocketCases };

export async function runStoreSuite(t: TestContext, makeStore: MakeStore): Promise<void> {
  for (const [name, run] of Object.entries(storeCases)) {
    await t.test(name, async () => {
      const fixture = await makeStore();
      try {
        await run(fixture);
      } finally {
        await fixture.cleanup();
      }
    });
  }
}
