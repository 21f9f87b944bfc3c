-- Gateway replicas announce themselves every few seconds; each learns how many are alive and
-- takes its share of the per-user rate limits.
CREATE TABLE gateway_replicas (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
