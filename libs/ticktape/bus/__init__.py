"""JetStream shell: connect, provision streams, publish with Nats-Msg-Id, consume in order."""
