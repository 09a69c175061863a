/** An in-memory bounded HintStore (until the durable one lands on main, and for fast tests). */
import { ShoalError } from '../../../src/errors.js';
import type { HintStoreLike } from '../../../src/cluster/ports.js';
import type { Entry } from '../../../src/storage/types.js';

export class MemoryHints implements HintStoreLike {
  private readonly byTarget = new Map<string, Array<{ key: string; entry: Entry }>>();
  constructor(private readonly hintsMax = 100_000) {}
  async add(targetId: string, key: string, entry: Entry): Promise<void> {
    if (this.total() >= this.hintsMax) throw new ShoalError('UNAVAILABLE', 'hint store full');
    const list = this.byTarget.get(targetId) ?? [];
    list.push({ key, entry });
    this.byTarget.set(targetId, list);
  }
  pendingFor(targetId: string): number {
    return this.byTarget.get(targetId)?.length ?? 0;
  }
  targets(): string[] {
    return [...this.byTarget.keys()].filter((t) => this.pendingFor(t) > 0);
  }
  async replay(targetId: string, send: (key: string, entry: Entry) => Promise<void>): Promise<{ sent: number; failed: number }> {
    const list = this.byTarget.get(targetId) ?? [];
    let sent = 0;
    while (list.length > 0) {
      try {
        await send(list[0].key, list[0].entry);
      } catch {
        return { sent, failed: 1 };
      }
      list.shift();
      sent += 1;
    }
    return { sent, failed: 0 };
  }
  stats(): object {
    return { hints: this.total() };
  }
  async close(): Promise<void> {}
  private total(): number {
    let n = 0;
    for (const l of this.byTarget.values()) n += l.length;
    return n;
  }
}
