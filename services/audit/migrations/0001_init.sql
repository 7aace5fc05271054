-- Audit log: every message of the archived streams, in stream order, hash-chained per stream
-- (hash = sha256(prev_hash || preimage), see ticktape.audit.chain), plus periodic checkpoints.
-- `data` is the message body exactly as stored on the stream; the other event columns are
-- projections of it for querying, and verification recomputes them. Event times are integer ns.

CREATE TABLE audit_log (
    stream         text        NOT NULL,
    seq            bigint      NOT NULL CHECK (seq >= 1),
    subject        text        NOT NULL,
    event_id       text,
    type           text,
    ts_event       bigint,
    causation_id   text,
    correlation_id text,
    data           bytea       NOT NULL,
    payload        jsonb,
    prev_hash      bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash           bytea       NOT NULL CHECK (length(hash) = 32),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
);

CREATE INDEX audit_log_event_id ON audit_log (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX audit_log_causation_id ON audit_log (causation_id) WHERE causation_id IS NOT NULL;
CREATE INDEX audit_log_correlation_id ON audit_log (correlation_id, stream, seq) WHERE correlation_id IS NOT NULL;
CREATE INDEX audit_log_type ON audit_log (type, stream, seq);

CREATE TABLE audit_checkpoints (
    stream     text        NOT NULL,
    upto_seq   bigint      NOT NULL,
    hash       bytea       NOT NULL CHECK (length(hash) = 32),
    count      bigint      NOT NULL CHECK (count >= 1),
    reason     text        NOT NULL CHECK (reason IN ('interval', 'shutdown')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, upto_seq)
);
