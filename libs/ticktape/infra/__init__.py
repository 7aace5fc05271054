"""Real infrastructure, embedded by default: nats-server and PostgreSQL from their wheels."""
