"""The audit log: a hash-chained copy of every stream message in PostgreSQL (written by the
`audit` service), and what reads it back: chain verification, causal traces (`ticktape audit`)."""
