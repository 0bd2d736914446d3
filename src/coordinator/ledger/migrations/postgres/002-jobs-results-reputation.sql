-- 2: jobs and verified unit results survive a crash; reputation per wallet key.
CREATE TABLE jobs (
  id              TEXT PRIMARY KEY,
  owner           TEXT NOT NULL,
  m               INTEGER NOT NULL CHECK (m > 0),
  n               INTEGER NOT NULL CHECK (n > 0),
  k               INTEGER NOT NULL CHECK (k > 0),
  operands_sha256 TEXT NOT NULL,
  created_at_ms   BIGINT NOT NULL,
  finished_at_ms  BIGINT
);
CREATE TABLE unit_results (
  unit_id TEXT PRIMARY KEY REFERENCES credits (unit_id),
  job_id  TEXT NOT NULL,
  result  BYTEA NOT NULL
);
CREATE INDEX unit_results_by_job ON unit_results (job_id);
CREATE TABLE reputation (
  miner_key       TEXT PRIMARY KEY,
  score           INTEGER NOT NULL,
  accepted        INTEGER NOT NULL CHECK (accepted >= 0),
  rejected        INTEGER NOT NULL CHECK (rejected >= 0),
  banned_until_ms BIGINT NOT NULL
);
