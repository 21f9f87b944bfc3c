-- Bot channels: the channel a call came from is kept with its audit record and its proposal,
-- so an approved call runs in the channel it was asked in (the channel is a policy dimension).
ALTER TABLE audit ADD COLUMN channel TEXT;
ALTER TABLE proposals ADD COLUMN channel TEXT;
