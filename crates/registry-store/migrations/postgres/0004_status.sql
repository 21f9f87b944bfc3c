-- The last live probe of each server. Kept apart from the catalog: a probe result changes no
-- policy and does not move the catalog version.
CREATE TABLE server_status (
    server           TEXT PRIMARY KEY NOT NULL REFERENCES servers(name) ON DELETE CASCADE,
    ok               BIGINT NOT NULL,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    checked_at_ms    BIGINT NOT NULL,
    last_ok_at_ms    BIGINT,
    tools            BIGINT NOT NULL,
    protocol_version TEXT
);
