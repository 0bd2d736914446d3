-- 7 (PostgreSQL's 8): the kind each credit's receipt was signed with, so that a receipt lost with its link (or with a
-- coordinator killed after the credit was committed) can be signed again from the ledger row, equal in every field.
-- Rows from before this migration have none: their receipts cannot be signed again.
ALTER TABLE credits ADD COLUMN receipt_kind TEXT;
ALTER TABLE pending_credits ADD COLUMN receipt_kind TEXT;
