// Retry delays for everything that retries (tunnel redials, audit export): exponential with
// "equal jitter" (half fixed, half random), capped, so a fleet of connectors or edges does not
// retry in lockstep after an outage. Pure: the random source comes in as an argument.

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

/** The delay before retry number `attempt` (0 for the first): between half and all of min(cap, base·2^attempt). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
