-- 8: a pending credit keeps the kind its receipt will name, which may name the engine its unit ran on (onnx-webgpu):
-- a job's units can run on different engines, so the job alone no longer says it. NULL: the job's kind's default.
ALTER TABLE pending_credits ADD COLUMN receipt_kind TEXT;
