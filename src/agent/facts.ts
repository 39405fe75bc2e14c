// Host facts the agent reports about itself: hostname, OS, kernel and machine id. Self-asserted
// (a process can say anything about its host), so the control plane records them apart and
// trusts them only where the admin said so.
import { readFile } from 'node:fs/promises';
import { hostname, platform, release } from 'node:os';
import type { HostFacts } from '../api-client/index.js';

export async function gatherHostFacts(machineIdFile = '/etc/machine-id'): Promise<HostFacts> {
  const machineId = await readFile(machineIdFile, 'utf8').then((t) => t.trim(), () => '');
  return {
    hostname: hostname().slice(0, 255),
    os: platform(),
    kernel: release().slice(0, 255),
    ...(/^[0-9a-f]{32}$/i.test(machineId) ? { machine_id: machineId.toLowerCase() } : {}),
  };
}
