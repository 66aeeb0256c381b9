from tests.workflows.harness import make_request, terms


async def test_automated_counteroffer_within_mandate_gets_strategy_counter(start):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", terms(50000, 10, 45))
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    assert s.our_terms.terms.total_contract_value == 55000
    await n.respond("accept")
    await n.until(lambda s: s.movement.value == "closure")
    await n.respond("sign")
    result = await n.result()
    assert result.outcome.value == "agreed", result.status.model_dump_json(indent=1)
