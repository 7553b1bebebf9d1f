// The schema's history, in order. To change the schema add NNN_name.ts exporting `sql` and list
// it here; never edit a migration that has shipped. (Migrations are TS string modules rather
// than .sql files so that tsc carries them into dist/ and no file lookup is needed at run time.)
import { sql as m001 } from './001_init.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [{ version: 1, name: 'init', sql: m001 }];

export const latestVersion = migrations[migrations.length - 1]!.version;
