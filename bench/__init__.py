"""``python -m bench``: Fitnest's throughput as a ratio against a minimal workflow, same run.

Starts its own in-memory dev server and two in-process workers, measures a minimal baseline
workflow and automated negotiations with the same concurrency, counts the history events each
needs, and reports ratios (see ``bench/README.md``). Nothing here is imported by the product.
"""
