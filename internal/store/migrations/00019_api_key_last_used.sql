-- When each API key was last used (to within apikey.CacheFor), for
-- 'kabuto apikey --list'.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN last_used_us BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN last_used_us;
