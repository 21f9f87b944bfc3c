-- Humans in the loop: calls waiting for a person's approval, the decision, and what running them
-- gave. A proposal is claimed by one gateway before it runs, so it runs at most once per claim.
CREATE TABLE proposals (
    id              TEXT PRIMARY KEY NOT NULL,   -- chosen by the gateway
    server          TEXT NOT NULL,
    tool            TEXT NOT NULL,
    arguments       TEXT NOT NULL,               -- JSON
    argument_digest TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    groups          TEXT NOT NULL,               -- JSON array
    surface         TEXT NOT NULL,
    client          TEXT,
    reason          TEXT NOT NULL,
    approver        TEXT NOT NULL,               -- self | owners | group:<name>
    state           TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    decided_by      TEXT,
    decided_at_ms   INTEGER,
    comment         TEXT,
    claimed_by      TEXT,
    result          TEXT,                        -- JSON
    finished_at_ms  INTEGER
);
CREATE INDEX proposals_by_state ON proposals (state, created_at_ms);
CREATE INDEX proposals_by_server ON proposals (server, created_at_ms);
CREATE INDEX proposals_by_user ON proposals (user_name, created_at_ms);
