-- Who must approve each call of a tool before it runs (self | owners | group:<name>), if anyone.
ALTER TABLE tools ADD COLUMN approval TEXT;
