-- 1: one credit per verified unit, never two: the unit id is the key.
CREATE TABLE credits (
  unit_id       TEXT PRIMARY KEY,
  job_id        TEXT NOT NULL,
  miner_key     TEXT NOT NULL,
  ops           BIGINT NOT NULL CHECK (ops >= 0),
  micro_credits BIGINT NOT NULL CHECK (micro_credits >= 0),
  gpu_seconds   DOUBLE PRECISION NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE INDEX credits_by_miner ON credits (miner_key);
