"""gateway/metrics/families.py declares the families; `Metrics` has one typed attribute for each."""

from __future__ import annotations

from gateway.metrics import Metrics
from gateway.metrics.families import FAMILIES


def test_every_family_is_a_typed_attribute_of_metrics() -> None:
    assert list(Metrics.__annotations__) == list(FAMILIES)
    metrics = Metrics()
    for attribute, family in FAMILIES.items():
        made = getattr(metrics, attribute)
        assert type(made) is family.type
        assert Metrics.__annotations__[attribute] == family.type.__name__
