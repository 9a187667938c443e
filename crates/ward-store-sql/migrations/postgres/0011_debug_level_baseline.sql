-- A debug-level resource's level as ward last saw it or put it back, with no grant holding it,
-- and the level last reported as changed outside ward (drift is reported once per change).
ALTER TABLE debug_levels ADD COLUMN baseline TEXT;
ALTER TABLE debug_levels ADD COLUMN drifted TEXT;
