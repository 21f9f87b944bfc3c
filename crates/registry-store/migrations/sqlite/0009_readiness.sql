-- Readiness: a server that answers MCP may still be unable to serve (its backend is not
-- connected or unreachable); the probe keeps its reason, read from the server's /readyz.
ALTER TABLE server_status ADD COLUMN not_ready TEXT;
