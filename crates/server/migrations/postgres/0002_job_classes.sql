-- Polls are claimed at a paced rate (`engine.poll_rate`), everything else as
-- soon as it is due, so each class has its own index on the ready time.
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready_polls ON jobs ((GREATEST(due_at, lease_until))) WHERE kind = 'poll';
CREATE INDEX jobs_ready_other ON jobs ((GREATEST(due_at, lease_until))) WHERE kind <> 'poll';
