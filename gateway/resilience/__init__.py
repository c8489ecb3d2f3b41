"""Resilience mechanisms shared by the vendor path and the store: one breaker, one GCRA bucket, one retry
budget. Pure in-process state with an injectable clock; nothing here imports the rest of the gateway."""
