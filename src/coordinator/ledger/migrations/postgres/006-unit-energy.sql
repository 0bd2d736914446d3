-- 6 (SQLite's 5): each credit keeps the unit's energy as signed into its receipt (0 J and 'none' when unmeasured or
-- refused), why a claim was refused, the coordinator's own lease-to-result seconds, which rankings use for
-- throughput, and the adapter model the miner said it computed on (self-reported).
ALTER TABLE credits ADD COLUMN joules DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (joules >= 0);
ALTER TABLE credits ADD COLUMN joules_source TEXT NOT NULL DEFAULT 'none';
ALTER TABLE credits ADD COLUMN joules_uncertainty DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (joules_uncertainty >= 0);
ALTER TABLE credits ADD COLUMN joules_above_idle DOUBLE PRECISION;
ALTER TABLE credits ADD COLUMN energy_refused TEXT;
ALTER TABLE credits ADD COLUMN wall_seconds DOUBLE PRECISION;
ALTER TABLE credits ADD COLUMN adapter TEXT;
