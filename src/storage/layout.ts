/**
 * Names of the files in a data directory. Sequence numbers are zero-padded so that names sort in
 * sequence order:
 *   wal-<first seq>.log       WAL segment whose first record has that sequence number
 *   snap-<last seq>.snap      snapshot covering every WAL record up to that sequence number
 *   *.tmp                     a snapshot being written (removed at open)
 *   *.corrupt*                bytes set aside by a repair, never read again
 *   LOCK                      the pid of the process that has the directory open
 */
const SEQ_DIGITS = 16;
const WAL_RE = /^wal-(\d{16})\.log$/;
const SNAP_RE = /^snap-(\d{16})\.snap$/;

export const LOCK_FILE = 'LOCK';
export const TMP_SUFFIX = '.tmp';

function pad(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

export function segmentName(firstSeq: number): string {
  return `wal-${pad(firstSeq)}.log`;
}

export function snapshotName(seq: number): string {
  return `snap-${pad(seq)}.snap`;
}

export interface NamedSeq {
  name: string;
  seq: number;
}

function parse(names: string[], re: RegExp): NamedSeq[] {
  const out: NamedSeq[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (m) out.push({ name, seq: Number(m[1]) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** WAL segments in the directory listing, oldest first; `seq` is the first record's sequence number. */
export function parseSegments(names: string[]): NamedSeq[] {
  return parse(names, WAL_RE);
}

/** Snapshots in the directory listing, oldest first; `seq` is the last WAL sequence number covered. */
export function parseSnapshots(names: string[]): NamedSeq[] {
  return parse(names, SNAP_RE);
}
