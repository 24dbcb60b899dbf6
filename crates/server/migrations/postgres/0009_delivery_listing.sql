-- gangway: backward-compatible
-- Deliveries across sessions (the console's deliveries page and bulk
-- redelivery, issue 22): newest first by id (an id begins with its creation
-- time in hex, so `since` is an id bound too), filtered by status or by
-- endpoint, each answered from an index instead of a scan of every delivery
-- of 100,000 sessions. An older release ignores both indexes.
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint, id);
