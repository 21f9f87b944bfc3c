-- Governance: teams that own servers, the reviews a server passes before production, what each
-- tool's approved definition hashes to, and the audit of every change to the catalog.
CREATE TABLE teams (
    name            TEXT PRIMARY KEY NOT NULL,
    title           TEXT,
    owners          TEXT NOT NULL,   -- JSON array of users
    member_groups   TEXT NOT NULL,   -- JSON array of groups
    support_channel TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

ALTER TABLE servers ADD COLUMN docs_url TEXT;
ALTER TABLE servers ADD COLUMN data_classification TEXT NOT NULL DEFAULT 'internal';
ALTER TABLE servers ADD COLUMN sensitivity TEXT NOT NULL DEFAULT 'low';
ALTER TABLE servers ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE servers ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;

ALTER TABLE tools ADD COLUMN definition_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE tools ADD COLUMN approved_hash TEXT;

CREATE TABLE reviews (
    id            TEXT PRIMARY KEY NOT NULL,   -- <server>.<round>.<kind>
    server        TEXT NOT NULL REFERENCES servers(name) ON DELETE CASCADE,
    round         INTEGER NOT NULL,
    scope         TEXT NOT NULL,               -- server | tools
    kind          TEXT NOT NULL,               -- security | legal-privacy | genai
    state         TEXT NOT NULL,               -- pending | approved | rejected | superseded
    reason        TEXT NOT NULL,
    tools         TEXT NOT NULL,               -- JSON object: tool name -> definition hash
    findings      TEXT NOT NULL,               -- JSON array of automated findings
    opened_at_ms  INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at_ms INTEGER,
    comment       TEXT
);
CREATE INDEX reviews_by_server ON reviews (server, round);
CREATE INDEX reviews_by_state ON reviews (state, opened_at_ms);

CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    subject TEXT NOT NULL,   -- server:<name> | team:<name> | review:<id>
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL    -- JSON
);
CREATE INDEX changes_by_subject ON changes (subject, seq);
