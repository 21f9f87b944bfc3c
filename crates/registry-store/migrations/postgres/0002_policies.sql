-- Each server's own Cedar policies, validated when it registers.
ALTER TABLE servers ADD COLUMN policies TEXT NOT NULL DEFAULT '';
