-- Observability and the north-star: what the audit keeps of each call (its redacted arguments,
-- the proposal it became or ran under, the owner team and the minutes-saved estimate at the time,
-- its trace), which arguments a tool's manifest marks sensitive, and people's feedback on tools.
ALTER TABLE tools ADD COLUMN sensitive_arguments TEXT;   -- JSON array
ALTER TABLE audit ADD COLUMN arguments TEXT;             -- JSON, redacted
ALTER TABLE audit ADD COLUMN proposal TEXT;
ALTER TABLE audit ADD COLUMN team TEXT;
ALTER TABLE audit ADD COLUMN minutes_saved REAL;
ALTER TABLE audit ADD COLUMN trace_id TEXT;
CREATE INDEX audit_by_time ON audit (time_ms, id);

CREATE TABLE feedback (
    id        TEXT PRIMARY KEY NOT NULL,
    time_ms   INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    server    TEXT NOT NULL,
    tool      TEXT NOT NULL,
    rating    INTEGER NOT NULL,      -- 1 (thumbs up) or -1 (thumbs down)
    comment   TEXT,
    audit_id  TEXT,
    surface   TEXT
);
CREATE INDEX feedback_by_tool ON feedback (server, tool, time_ms);
CREATE INDEX feedback_by_time ON feedback (time_ms);
