// Interleaved rounds: on a shared, noisy machine a figure and its baselines are measured in turn, round after round, and each is the median of its rounds.
export interface Samples<T> {
  /** Every round's result, in round order. */
  readonly runs: T[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** max / min of a figure over its rounds: how much the machine moved it. */
export function spread(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  return finite.length < 2 ? 1 : Math.max(...finite) / Math.min(...finite);
}

/**
 * Runs every case once per round, `rounds` times, in the same order each round (so neighbours share the same moment of load).
 * A case that throws is reported once through `onError` and left out of later rounds.
 */
export async function interleave<T>(rounds: number, cases: readonly (readonly [string, () => Promise<T>])[], log: (name: string, round: number, result: T) => void, onError: (name: string, round: number, err: Error) => void): Promise<Map<string, Samples<T>>> {
  const out = new Map<string, Samples<T>>();
  const failed = new Set<string>();
  for (let round = 1; round <= rounds; round++) {
    for (const [name, runOnce] of cases) {
      if (failed.has(name)) continue;
      try {
        const result = await runOnce();
        log(name, round, result);
        let samples = out.get(name);
        if (!samples) out.set(name, (samples = { runs: [] }));
        samples.runs.push(result);
      } catch (err) {
        failed.add(name);
        onError(name, round, err as Error);
      }
    }
  }
  return out;
}
