// What the store's background parts take from their environment: a logger (pino-compatible)
// and timers (injectable so tests drive polling and timeouts without sleeping).

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

export interface Timers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimer(fn, ms) {
    return setTimeout(fn, ms);
  },
  clearTimer(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** Lets a background timer not keep the process alive, when the handle supports it. */
export function unrefTimer(handle: unknown): void {
  if (typeof handle === 'object' && handle !== null && 'unref' in handle) {
    const unref = (handle as { unref: unknown }).unref;
    if (typeof unref === 'function') unref.call(handle);
  }
}
