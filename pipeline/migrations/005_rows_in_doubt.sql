-- Identifiers whose request may have reached a provider in a run that has
-- not settled them (left in flight by a crash, accepted and not yet
-- complete, or waiting for a lookup). A new run of an edited manifest that
-- repeats them must look them up before sending: the provider may already
-- hold them.
CREATE INDEX rows_doubt_eid   ON rows (provider, eid)   WHERE (state IN ('in_flight', 'accepted') OR (state = 'pending' AND must_lookup = 1)) AND eid != '';
CREATE INDEX rows_doubt_cli   ON rows (provider, cli)   WHERE (state IN ('in_flight', 'accepted') OR (state = 'pending' AND must_lookup = 1)) AND cli != '';
CREATE INDEX rows_doubt_iccid ON rows (provider, iccid) WHERE (state IN ('in_flight', 'accepted') OR (state = 'pending' AND must_lookup = 1)) AND iccid != '';
