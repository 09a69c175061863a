/**
 * Lifeguard's local health awareness: a score from 0 (healthy) to max − 1 that rises when this node
 * misses acks and nacks it should have received, or has to refute a suspicion of itself, and falls
 * with every successful probe. Probe timeouts and the probe interval are multiplied by score + 1, so a
 * node that is itself slow (CPU-starved, lossy link) waits longer before accusing others.
 */
export class Awareness {
  private value = 0;

  constructor(private readonly max: number) {}

  /** Adds `delta` (negative = healthier), clamped to 0..max − 1. */
  apply(delta: number): void {
    this.value = Math.min(this.max - 1, Math.max(0, this.value + delta));
  }

  get score(): number {
    return this.value;
  }

  scale(ms: number): number {
    return ms * (this.value + 1);
  }
}
