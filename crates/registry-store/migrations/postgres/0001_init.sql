-- The registry's catalog: servers, their tools as last reported, and the audit of every call.
-- Integers are BIGINT throughout so that one set of queries reads them the same on every database.
CREATE TABLE servers (
    name             TEXT PRIMARY KEY NOT NULL,
    title            TEXT,
    description      TEXT NOT NULL,
    owner_team       TEXT NOT NULL,
    support_channel  TEXT NOT NULL,
    version          TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    environment      TEXT NOT NULL,
    allowed_groups   TEXT NOT NULL,  -- JSON array of group names
    manifest         TEXT NOT NULL,  -- the manifest as registered, JSON
    status           TEXT NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

CREATE TABLE tools (
    server        TEXT NOT NULL REFERENCES servers(name) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    position      BIGINT NOT NULL,
    definition    TEXT NOT NULL,
    minutes_saved DOUBLE PRECISION NOT NULL,
    sensitivity   TEXT NOT NULL,
    policy_name   TEXT,
    policy_groups TEXT,
    PRIMARY KEY (server, name)
);

CREATE TABLE audit (
    id              TEXT PRIMARY KEY NOT NULL,
    time_ms         BIGINT NOT NULL,
    user_name       TEXT NOT NULL,
    groups          TEXT NOT NULL,
    surface         TEXT,
    server          TEXT NOT NULL,
    method          TEXT NOT NULL,
    tool            TEXT,
    argument_digest TEXT,
    outcome         TEXT NOT NULL,
    is_error        BIGINT NOT NULL,
    detail          TEXT,
    latency_ms      BIGINT NOT NULL
);
CREATE INDEX audit_by_server ON audit (server, time_ms);
CREATE INDEX audit_by_user ON audit (user_name, time_ms);
