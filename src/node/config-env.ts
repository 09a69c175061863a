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
