-- The last live probe of each server. Kept apart from the catalog: a probe result changes no
-- policy and does not move the catalog version.
CREATE TABLE server_status (
    server           TEXT PRIMARY KEY NOT NULL REFERENCES servers(name) ON DELETE CASCADE,
    ok               INTEGER NOT NULL,
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    checked_at_ms    INTEGER NOT NULL,
    last_ok_at_ms    INTEGER,
    tools            INTEGER NOT NULL,
    protocol_version TEXT
);
