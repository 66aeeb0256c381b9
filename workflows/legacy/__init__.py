"""The message path of release 4, kept only so that negotiations started on it finish on it.

Marked for removal. Negotiations started before the one-hop path (``workflows.protocol.ONE_HOP``)
relay every message through the negotiation workflow, which forwards it to the movement that
plays (``deliver`` / ``sealed_deliver``) and folds back what the movement reports
(``movement_report(s)`` / ``sealed_reports``). Their histories replay here, unchanged: the
negotiation workflow hands such a run to :class:`~workflows.legacy.negotiation.LegacyNegotiation`
in its first task, and their movements are the workflow types of release 4
(``PreparationMovement`` ... ``ClosureMovement``), registered beside the new ones.

Remove this package when no negotiation started before the deployment of the one-hop path is
still running: ``WorkflowType = 'NegotiationWorkflow' AND ExecutionStatus = 'Running' AND
StartTime < '<that deployment>'`` finds none (technical description, "Retiring the old path").
Do not change it meanwhile: every command it issues is part of the histories that replay
through it.
"""
