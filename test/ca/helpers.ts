// Shared by the CA tests: an in-memory SecretRepo that counts writes.
import type { SecretRepo } from '../../src/store/types.js';

export class MemorySecrets implements SecretRepo {
  readonly values = new Map<string, string>();
  writes = 0;

  async get(name: string): Promise<string | undefined> {
    return this.values.get(name);
  }

  async putIfAbsent(name: string, value: string): Promise<string> {
    if (!this.values.has(name)) {
      this.values.set(name, value);
      this.writes++;
    }
    return this.values.get(name)!;
  }

  async put(name: string, value: string): Promise<void> {
    this.values.set(name, value);
    this.writes++;
  }
}
