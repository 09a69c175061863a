/**
 * config/default.json, read once: every default of a node in one file (docs/CONFIG.md gives each
 * one's meaning and reason). It sits two levels above both src/node/ and dist/node/.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DEFAULTS_PATH = fileURLToPath(new URL('../../config/default.json', import.meta.url));

/** The parsed file; never mutate it (clone first). */
export const DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze(JSON.parse(readFileSync(DEFAULTS_PATH, 'utf8')) as Record<string, unknown>);
