// Structured logging: one JSON object per event, with the unit, miner and job ids it concerns.
type Fields = Record<string, string | number | boolean | bigint | null | undefined>;

const quiet = process.env.ERGON_LOG === 'silent';

export function log(event: string, fields: Fields = {}): void {
  if (quiet) return;
  const line: Record<string, unknown> = { t: new Date().toISOString(), event };
  for (const [key, value] of Object.entries(fields)) line[key] = typeof value === 'bigint' ? value.toString() : value;
  console.log(JSON.stringify(line));
}
