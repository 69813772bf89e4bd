-- The client address each sign-in (session) came from. An address the account signed in from
-- recently is a known-good address: failed sign-ins from other addresses cannot lock the owner
-- out of it (src/services/auth/login-throttle.ts). Sessions from before this migration have none.
ALTER TABLE sessions ADD COLUMN client_address text;
CREATE INDEX sessions_client_address_idx ON sessions (user_id, client_address, created_at);
