-- When a gateway claimed a proposal: a claim that outlives its lease without a result (the
-- gateway died while running it) can be taken over; servers dedupe the call by proposal id.
ALTER TABLE proposals ADD COLUMN claimed_at_ms INTEGER;
