-- 5 (PostgreSQL only): the fleet's shared queue. Every unit of every open job is a row; a live lease is a unit row
-- with a lease id; any coordinator leases with SELECT ... FOR UPDATE SKIP LOCKED and expires whichever leases it
-- notices are overdue, or held by a coordinator that stopped beating.
CREATE SEQUENCE queue_rank;
CREATE TABLE queue_units (
  unit_id        TEXT PRIMARY KEY,
  job_id         TEXT NOT NULL,
  -- the order units are leased in: submitted units count up; a unit put back gets a negative rank, ahead of all
  rank           BIGINT NOT NULL,
  done           BOOLEAN NOT NULL DEFAULT false,
  lease_id       TEXT UNIQUE,
  session_id     TEXT,
  coordinator    TEXT,
  leased_at_ms   BIGINT,
  deadline_at_ms BIGINT,
  CHECK ((lease_id IS NULL) = (session_id IS NULL) AND (lease_id IS NULL) = (coordinator IS NULL))
);
CREATE INDEX queue_units_waiting ON queue_units (rank) WHERE lease_id IS NULL AND NOT done;
CREATE INDEX queue_units_by_job ON queue_units (job_id);
CREATE INDEX queue_units_by_session ON queue_units (session_id) WHERE lease_id IS NOT NULL;
CREATE TABLE ended_leases (
  lease_id    TEXT PRIMARY KEY,
  session_id  TEXT NOT NULL,
  unit_id     TEXT NOT NULL,
  end_reason  TEXT NOT NULL CHECK (end_reason IN ('completed', 'released', 'expired', 'removed')),
  ended_at_ms BIGINT NOT NULL
);
CREATE INDEX ended_leases_by_age ON ended_leases (ended_at_ms);
-- a finished job's assembled output, for whichever coordinator its requester asks
CREATE TABLE job_outputs (
  job_id       TEXT PRIMARY KEY,
  content_type TEXT NOT NULL,
  headers      JSONB NOT NULL,
  body         BYTEA NOT NULL,
  -- what the API shows of the job, kept since its operands (from which the kind describes it) are freed
  view         JSONB NOT NULL
);
-- one row per running coordinator process; a process silent too long is dead, and its leases go back
CREATE TABLE coordinators (
  instance      TEXT PRIMARY KEY,
  signing_key   TEXT NOT NULL,
  url           TEXT NOT NULL,
  peer_id       TEXT NOT NULL,
  started_at_ms BIGINT NOT NULL,
  heard_at_ms   BIGINT NOT NULL
);
