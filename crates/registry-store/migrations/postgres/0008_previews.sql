-- Previews: a tool may answer a preview of a call before it is proposed (what the call would
-- change), and the proposal keeps that answer for its approvers.
ALTER TABLE tools ADD COLUMN preview BIGINT NOT NULL DEFAULT 0;
ALTER TABLE proposals ADD COLUMN preview TEXT;
