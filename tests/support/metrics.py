"""Prometheus metrics as a test reads them: scrape a server, read one sample.

`value` raises for a metric the server does not export at all (a misspelt name must fail the
test, not read as 0); a labelled series that has not been created yet is 0, as Prometheus reads it.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created")


class Samples(dict[tuple[str, tuple[tuple[str, str], ...]], float]):
    families: set[str]


def parse(text: str) -> Samples:
    samples = Samples()
    samples.families = set()
    for family in text_string_to_metric_families(text):
        samples.families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def scrape(server: Any) -> Samples:
    """The metrics of a server, real or in process (anything with `base` and `get`)."""
    return parse(server.get(server.base + "/metrics").text)


def value(samples: Samples, name: str, /, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    if key in samples:
        return samples[key]
    family = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
    if family in samples.families or name in samples.families:
        return 0.0
    raise KeyError(f"the server exports no metric {name!r} (it has {sorted(samples.families)})")
