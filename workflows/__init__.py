"""The score: the negotiation workflow and one module per movement."""
