// Forces a full V8 garbage collection in a child started with --inspect=127.0.0.1:0, so RSS readings are not skewed by garbage.
import WebSocket from 'ws';
import type { Child } from './proc.js';

export const INSPECT_ARG = '--inspect=127.0.0.1:0';

export async function collectGarbage(child: Child, timeoutMs = 10_000): Promise<void> {
  const url = (await child.waitFor(/Debugger listening on (ws:\/\/\S+)/, 5_000))[1]!;
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => (ws.terminate(), reject(new Error(`${child.name}: no GC answer within ${timeoutMs} ms`))), timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; error?: { message: string } };
      if (message.id !== 1) return;
      clearTimeout(timer);
      ws.close();
      if (message.error) reject(new Error(`${child.name}: ${message.error.message}`));
      else resolve();
    });
    ws.on('error', (err) => (clearTimeout(timer), reject(err)));
  });
}
