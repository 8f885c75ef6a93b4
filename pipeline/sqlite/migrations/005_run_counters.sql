-- Named counts of things that happened around a run rather than to one of
-- its rows (ThingSpace callback deliveries refused, by reason), added up
-- over every process that worked on the run, for its log and summary.
ALTER TABLE runs ADD COLUMN counters TEXT NOT NULL DEFAULT '{}';
