-- Polls are claimed at a paced rate (`engine.poll_rate`), everything else as
-- soon as it is due, so each class has its own index on the ready time. A
-- job is ready when both its due time and its lease have passed; indexing
-- that expression lets the scheduler find the next ready job without
-- scanning the table (100,000 waiting sessions hold 200,000 jobs).
DROP INDEX jobs_due;
CREATE INDEX jobs_ready_polls ON jobs (MAX(due_at, lease_until)) WHERE kind = 'poll';
CREATE INDEX jobs_ready_other ON jobs (MAX(due_at, lease_until)) WHERE kind <> 'poll';
