"""The application's exceptions, one root for all.

PteBotError
├── ConfigError            a setting is missing or wrong (stops the program at start)
├── StoreError             the database refused or is from a newer release
└── DeliveryError          a message could not be delivered by a channel
    ├── TransientDelivery  try again later (429 with retry_after, 5xx, time-outs)
    └── PermanentDelivery  never will be (blocked by the user, chat not found)
"""

from __future__ import annotations


class PteBotError(Exception):
    """Root of the application's exceptions."""


class ConfigError(PteBotError):
    pass


class StoreError(PteBotError):
    pass


class DeliveryError(PteBotError):
    pass


class TransientDelivery(DeliveryError):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentDelivery(DeliveryError):
    pass
