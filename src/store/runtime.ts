// The logger the store's background parts (change feed, snapshot cache) write to: pino-compatible,
// so the server passes its own; their timers come from the one clock (src/clock.ts).

export interface StoreLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** Writes one line per event to stderr; used when no logger is given. */
export const consoleLogger: StoreLogger = {
  warn(obj, msg) {
    console.warn(`postern store: ${msg}`, obj);
  },
  error(obj, msg) {
    console.error(`postern store: ${msg}`, obj);
  },
};

export const silentLogger: StoreLogger = {
  warn() {},
  error() {},
};
