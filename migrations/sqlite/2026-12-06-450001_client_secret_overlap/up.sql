-- Client secret rotation with an overlap: the secret a rotation replaced keeps working until
-- previous_secret_expires_at (Unix ms), so a client can be redeployed with the new one without
-- an outage. Only its SHA-256 is stored, like the current secret's. NULL: no overlap.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
