-- 4: jobs of any kind: the kind's name, its parameters as JSON, and the sha256 of each of its operands (a JSON
-- array). Every job stored before this was a GEMM over one blob of A then B, and is carried over as such.
CREATE TABLE jobs_v4 (
  id             TEXT PRIMARY KEY,
  owner          TEXT NOT NULL,
  kind           TEXT NOT NULL,
  params         JSONB NOT NULL,
  operands       JSONB NOT NULL CHECK (jsonb_typeof(operands) = 'array'),
  created_at_ms  BIGINT NOT NULL,
  finished_at_ms BIGINT
);
INSERT INTO jobs_v4 (id, owner, kind, params, operands, created_at_ms, finished_at_ms)
  SELECT id, owner, 'gemm', jsonb_build_object('m', m, 'n', n, 'k', k, 'precision', precision), jsonb_build_array(operands_sha256),
         created_at_ms, finished_at_ms
  FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v4 RENAME TO jobs;
