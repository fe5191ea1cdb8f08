-- The second factor (TOTP) of each user, by subject: the sealed secret (the store never sees it
-- in clear), a pending one awaiting confirmation, the last time step used; recovery-code hashes;
-- remembered devices (token hashes); the key-check value of the sealing key.

CREATE TABLE {prefix}factor_users (
    subject            TEXT PRIMARY KEY,
    secret             BYTEA,
    pending            BYTEA,
    pending_expires_at BIGINT,
    last_step          BIGINT
);

CREATE TABLE {prefix}factor_recovery (
    subject   TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (subject, code_hash)
);

CREATE TABLE {prefix}factor_devices (
    subject     TEXT   NOT NULL,
    device_hash TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (subject, device_hash)
);

CREATE TABLE {prefix}factor_key_check (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BYTEA   NOT NULL
);
