-- What a run needs to be resumed by id: the options that shaped its rows,
-- and whether its manifest was loaded completely (a load cut short is
-- redone from the start: nothing of it was sent).
ALTER TABLE runs ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN loaded INTEGER NOT NULL DEFAULT 0;
