/** Clocks for cluster tests. */
import { type Clock, systemClock } from '../../../src/clock.js';

/**
 * The real timers of systemClock with a test-controlled time: both the wall clock and the monotonic
 * clock read `read()` (tests that move time by hand and call refresh()/runOnce() themselves).
 */
export function fakeTimeClock(read: () => number): Clock {
  return { ...systemClock, now: read, monotonicMs: read };
}

/** systemClock with another wall clock (skewed or frozen nodes); monotonic time and timers stay real. */
export function wallClock(now: () => number): Clock {
  return { ...systemClock, now };
}
