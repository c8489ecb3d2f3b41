from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.readiness_invalidation import ReadinessInvalidation
from ..models.readiness_status import ReadinessStatus
from ..models.readiness_store import ReadinessStore
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.readiness_store_nodes import ReadinessStoreNodes


T = TypeVar("T", bound="Readiness")


@_attrs_define
class Readiness:
    """
    Attributes:
        invalidation (ReadinessInvalidation):
        status (ReadinessStatus):
        store (ReadinessStore):
        store_nodes (ReadinessStoreNodes):
        store_state_for_s (float):
        store_unserved_slots (int | Unset): Cluster hash slots no reachable primary serves (present when > 0)
    """

    invalidation: ReadinessInvalidation
    status: ReadinessStatus
    store: ReadinessStore
    store_nodes: ReadinessStoreNodes
    store_state_for_s: float
    store_unserved_slots: int | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        invalidation = self.invalidation.value

        status = self.status.value

        store = self.store.value

        store_nodes = self.store_nodes.to_dict()

        store_state_for_s = self.store_state_for_s

        store_unserved_slots = self.store_unserved_slots

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "invalidation": invalidation,
                "status": status,
                "store": store,
                "store_nodes": store_nodes,
                "store_state_for_s": store_state_for_s,
            }
        )
        if store_unserved_slots is not UNSET:
            field_dict["store_unserved_slots"] = store_unserved_slots

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.readiness_store_nodes import ReadinessStoreNodes  # noqa: PLC0415

        d = dict(src_dict)
        invalidation = ReadinessInvalidation(d.pop("invalidation"))

        status = ReadinessStatus(d.pop("status"))

        store = ReadinessStore(d.pop("store"))

        store_nodes = ReadinessStoreNodes.from_dict(d.pop("store_nodes"))

        store_state_for_s = d.pop("store_state_for_s")

        store_unserved_slots = d.pop("store_unserved_slots", UNSET)

        readiness = cls(
            invalidation=invalidation,
            status=status,
            store=store,
            store_nodes=store_nodes,
            store_state_for_s=store_state_for_s,
            store_unserved_slots=store_unserved_slots,
        )

        return readiness
