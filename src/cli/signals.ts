// Ctrl-C / SIGTERM: run the graceful shutdown once; a second signal exits at once.
export function onShutdownSignal(shutdown: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    shutdown().then(
      () => process.exit(signal === 'SIGINT' ? 130 : 0),
      (err: unknown) => {
        process.stderr.write(`postern: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
