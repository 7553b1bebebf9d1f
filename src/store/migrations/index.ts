// The schema's history, in order. To change the schema add NNN_name.ts exporting `sql` and list
// it here; never edit a migration that has shipped. (Migrations are TS string modules rather
// than .sql files so that tsc carries them into dist/ and no file lookup is needed at run time.)
import { createHash } from 'node:crypto';
import { sql as m001 } from './001_init.js';
import { sql as m002 } from './002_queue.js';
import { sql as m003 } from './003_server.js';
import { sql as m004 } from './004_secrets.js';
import { sql as m005 } from './005_delivery.js';
import { sql as m006 } from './006_log_limit.js';
import { sql as m007 } from './007_schedules.js';
import { sql as m008 } from './008_log_compression.js';
import { sql as m009 } from './009_polled_refs.js';
import { sql as m010 } from './010_log_ingest.js';
import { sql as m011 } from './011_schedule_active.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  { version: 1, name: 'init', sql: m001 },
  { version: 2, name: 'queue', sql: m002 },
  { version: 3, name: 'server', sql: m003 },
  { version: 4, name: 'secrets', sql: m004 },
  { version: 5, name: 'delivery', sql: m005 },
  { version: 6, name: 'log_limit', sql: m006 },
  { version: 7, name: 'schedules', sql: m007 },
  { version: 8, name: 'log_compression', sql: m008 },
  { version: 9, name: 'polled_refs', sql: m009 },
  { version: 10, name: 'log_ingest', sql: m010 },
  { version: 11, name: 'schedule_active', sql: m011 },
];

export const latestVersion = migrations[migrations.length - 1]!.version;

/** One line per migration, `version sha256`: what a snapshot was built from. */
export function migrationDigests(list: readonly Migration[] = migrations): string {
  return list.map((m) => `${m.version} ${createHash('sha256').update(m.sql).digest('hex')}\n`).join('');
}

/** True when every migration in `digests` is, to the byte, one of ours: a snapshot built with an
 * older list is fine (newer migrations are applied after it), one with an edited migration
 * (during development) is not. */
export function digestsMatch(digests: string): boolean {
  const ours = new Set(migrationDigests().split('\n'));
  return digests.split('\n').every((line) => line === '' || ours.has(line));
}
