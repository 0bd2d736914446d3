// Versioned schema migrations, one SQL file per version per backend: migrations/<backend>/NNN-what.sql.
import { readdirSync, readFileSync } from 'node:fs';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** A backend's migrations in version order; the versions must run 1, 2, 3... with no gap. */
export function loadMigrations(backend: 'sqlite' | 'postgres'): Migration[] {
  const dir = new URL(`./migrations/${backend}/`, import.meta.url);
  const migrations = readdirSync(dir)
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => ({ version: Number.parseInt(name, 10), name, sql: readFileSync(new URL(name, dir), 'utf8') }));
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`ledger migrations: ${m.name} should be version ${i + 1}`);
  });
  return migrations;
}
