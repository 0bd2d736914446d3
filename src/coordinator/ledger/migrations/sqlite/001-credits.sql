-- 1: one credit per verified unit, never two: the unit id is the key.
CREATE TABLE credits (
  unit_id       TEXT PRIMARY KEY,
  job_id        TEXT NOT NULL,
  miner_key     TEXT NOT NULL,
  ops           INTEGER NOT NULL CHECK (ops >= 0),
  micro_credits INTEGER NOT NULL CHECK (micro_credits >= 0),
  gpu_seconds   REAL NOT NULL,
  created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX credits_by_miner ON credits (miner_key);
