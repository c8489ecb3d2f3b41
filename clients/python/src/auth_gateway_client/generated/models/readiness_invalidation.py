from enum import StrEnum


class ReadinessInvalidation(StrEnum):
    DOWN = "down"
    LIVE = "live"

    def __str__(self) -> str:
        return str(self.value)
