"""The negotiation domain: models, mandate and policy evaluation, strategy, KPIs.

Pure and deterministic: no Temporal, no I/O, no clock. Safe to call from workflow code.
"""
