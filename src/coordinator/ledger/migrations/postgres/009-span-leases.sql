-- 9 (PostgreSQL only): a lease may hold several units of one job, a span its kind joined into one product
-- (WorkKind.span). Its units share the lease id; each row also says which unit the lease names (the span's own id,
-- as the miner echoes it) and its place in the span, from which the span is joined again when its result comes.
ALTER TABLE queue_units DROP CONSTRAINT queue_units_lease_id_key;
ALTER TABLE queue_units ADD COLUMN lease_unit TEXT;
ALTER TABLE queue_units ADD COLUMN lease_part INT;
CREATE INDEX queue_units_by_lease ON queue_units (lease_id) WHERE lease_id IS NOT NULL;
