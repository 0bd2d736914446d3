-- 3: f16 jobs, whose operands are stored and leased as halves.
ALTER TABLE jobs ADD COLUMN precision TEXT NOT NULL DEFAULT 'f32' CHECK (precision IN ('f32', 'f16'));
