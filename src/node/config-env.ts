/**
 * Environment variables for configuration. Every field `section.fieldName` has the variable
 * `SHOAL_SECTION_FIELD_NAME` (e.g. storage.fsyncIntervalMs → SHOAL_STORAGE_FSYNC_INTERVAL_MS), and a
 * few common fields have a short alias. Lists are comma-separated, tags are `k=v,k=v`.
 */

/** Short names; the full name wins when both are set. */
export const ENV_ALIASES: Readonly<Record<string, string>> = {
  SHOAL_DATA_DIR: 'node.dataDir',
  SHOAL_CLUSTER: 'cluster.name',
  SHOAL_SEEDS: 'membership.seeds',
  SHOAL_ZONE: 'node.zone',
  SHOAL_FSYNC: 'storage.fsync',
};

/** Selects the cluster file and node, like --config and --node. */
export const ENV_CONFIG_FILE = 'SHOAL_CONFIG';
export const ENV_NODE = 'SHOAL_NODE';

/** "storage.fsyncIntervalMs" → "SHOAL_STORAGE_FSYNC_INTERVAL_MS". */
export function envName(path: string): string {
  return 'SHOAL_' + path.split('.').map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** The variables the client commands read (docs/CLI.md). */
export const CLIENT_ENV = ['SHOAL_ADDR', 'SHOAL_CLUSTER', 'SHOAL_TIMEOUT', 'SHOAL_CONFIG', 'SHOAL_TLS', 'SHOAL_TLS_CA', 'SHOAL_TLS_CERT', 'SHOAL_TLS_KEY', 'SHOAL_TLS_SERVER_NAME'] as const;

/** Prefixes the project's own tools use (benchmarks, chaos runs, tests); never settings. */
export const TOOL_ENV_PREFIXES = ['SHOAL_BENCH_', 'SHOAL_CHAOS_', 'SHOAL_TEST_', 'SHOAL_FUZZ_', 'SHOAL_BIN'] as const;

function leafPaths(value: Readonly<Record<string, unknown>>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (child !== null && typeof child === 'object' && !Array.isArray(child) && Object.keys(child).length > 0) out.push(...leafPaths(child as Record<string, unknown>, path));
    else out.push(path);
  }
  return out;
}

/** Every SHOAL_* name that means something: each setting's, the aliases, the agent's and the CLI's. */
export function knownEnvNames(defaults: Readonly<Record<string, unknown>>): Set<string> {
  return new Set([...leafPaths(defaults).map(envName), ...Object.keys(ENV_ALIASES), ENV_CONFIG_FILE, ENV_NODE, ...CLIENT_ENV]);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

export interface UnknownEnvVar {
  name: string;
  /** The closest known name, when one is close enough to be the intended one. */
  suggestion?: string;
  /** It starts like a setting (SHOAL_<SECTION>_...), so it was meant to configure a node. */
  setting: boolean;
  /** One line for the user. */
  message: string;
}

/**
 * The SHOAL_* variables set in `env` that nothing reads: a typo must never silently do nothing
 * (docs/CONFIG.md). The agent refuses to start on one that looks like a setting and warns about the
 * rest; client commands warn.
 */
export function unknownEnvVars(env: Record<string, string | undefined>, defaults: Readonly<Record<string, unknown>>): UnknownEnvVar[] {
  const known = knownEnvNames(defaults);
  const sections = Object.keys(defaults).map((s) => envName(s) + '_');
  const out: UnknownEnvVar[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('SHOAL_') || env[name] === undefined || known.has(name)) continue;
    if (TOOL_ENV_PREFIXES.some((p) => name.startsWith(p))) continue;
    let suggestion: string | undefined;
    let best = Infinity;
    for (const candidate of known) {
      const d = editDistance(name, candidate);
      if (d < best) {
        best = d;
        suggestion = candidate;
      }
    }
    if (best > Math.max(2, Math.floor(name.length / 6))) suggestion = undefined;
    const setting = sections.some((s) => name.startsWith(s));
    const hint = suggestion === undefined ? 'see docs/CONFIG.md and docs/CLI.md for the names' : `did you mean ${suggestion}?`;
    out.push({ name, suggestion, setting, message: `${name} is not a Shoal variable (${hint})` });
  }
  return out;
}
