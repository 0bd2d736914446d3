-- 7 (SQLite's 6): credits held as pending until an audit of their miner passes (kinds that audit a sample,
-- src/coordinator/audits.ts). A pending credit keeps its unit's result; it becomes a credit (and a result) when
-- settled, or a forfeited row when an audit fails: never paid. One pending credit per unit; a unit forfeited and done
-- again has one row per forfeiture. A held unit in the fleet's queue is neither waiting nor done.
CREATE TABLE pending_credits (
  unit_id            TEXT PRIMARY KEY,
  job_id             TEXT NOT NULL,
  miner_key          TEXT NOT NULL,
  ops                BIGINT NOT NULL CHECK (ops >= 0),
  micro_credits      BIGINT NOT NULL CHECK (micro_credits >= 0),
  gpu_seconds        DOUBLE PRECISION NOT NULL,
  created_at_ms      BIGINT NOT NULL,
  joules             DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (joules >= 0),
  joules_source      TEXT NOT NULL DEFAULT 'none',
  joules_uncertainty DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (joules_uncertainty >= 0),
  joules_above_idle  DOUBLE PRECISION,
  energy_refused     TEXT,
  wall_seconds       DOUBLE PRECISION,
  adapter            TEXT,
  result             BYTEA NOT NULL
);
CREATE INDEX pending_credits_by_miner ON pending_credits (miner_key);
CREATE INDEX pending_credits_by_job ON pending_credits (job_id);
CREATE TABLE forfeited_credits (
  id              BIGSERIAL PRIMARY KEY,
  unit_id         TEXT NOT NULL,
  job_id          TEXT NOT NULL,
  miner_key       TEXT NOT NULL,
  ops             BIGINT NOT NULL CHECK (ops >= 0),
  micro_credits   BIGINT NOT NULL CHECK (micro_credits >= 0),
  created_at_ms   BIGINT NOT NULL,
  forfeited_at_ms BIGINT NOT NULL,
  reason          TEXT NOT NULL
);
CREATE INDEX forfeited_credits_by_miner ON forfeited_credits (miner_key);
CREATE TABLE audit_records (
  miner_key       TEXT PRIMARY KEY,
  passed_in_a_row INTEGER NOT NULL CHECK (passed_in_a_row >= 0)
);
ALTER TABLE queue_units ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
