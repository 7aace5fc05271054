-- Signed checkpoints (ticktape.audit.signing): the archiver's ed25519 signature over a
-- checkpoint's stream, upto_seq, hash and count, and the id of the key that made it. NULL for
-- checkpoints written before signing existed. Also a checkpoint reason 'session': written right
-- after a session.stopped row is archived, so a session's range ends on a signed checkpoint.

ALTER TABLE audit_checkpoints
    ADD COLUMN signature bytea CHECK (signature IS NULL OR length(signature) = 64),
    ADD COLUMN key_id    text,
    ADD CONSTRAINT audit_checkpoints_signed_by CHECK ((signature IS NULL) = (key_id IS NULL));

ALTER TABLE audit_checkpoints DROP CONSTRAINT audit_checkpoints_reason_check;
ALTER TABLE audit_checkpoints
    ADD CONSTRAINT audit_checkpoints_reason_check CHECK (reason IN ('interval', 'shutdown', 'session'));
