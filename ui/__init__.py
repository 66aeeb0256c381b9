"""The approver UI, its JSON API for backend systems (and, later, the codec server)."""
