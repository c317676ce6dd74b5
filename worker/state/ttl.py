"""State time-to-live: :class:`StateTtlConfig` and its builder, with PyFlink's names.

A descriptor gets a TTL with ``descriptor.enable_time_to_live(config)``; backends then choose
their TTL state classes (in the hashmap backend, :mod:`streamjob.state.hashmap_ttl`), so state
without TTL never pays for it. Time is processing time from the backend's injected
:class:`~streamjob.clock.Clock`.

Semantics (Flink's ``TtlUtils``): an entry written (or, with ``OnReadAndWrite``, read) at ``ts``
is expired once ``now >= ts + ttl``. A read that finds an expired entry removes it; with
``ReturnExpiredIfNotCleanedUp`` that read still returns it, with ``NeverReturnExpired`` (the
default) it returns nothing. Lists and maps expire per element and per entry.
``cleanup_full_snapshot()`` leaves expired entries out of snapshots.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from streamjob.duration import Duration


class UpdateType(enum.Enum):
    """When an entry's last-access timestamp is refreshed."""

    Disabled = 0
    OnCreateAndWrite = 1
    OnReadAndWrite = 2


class StateVisibility(enum.Enum):
    """Whether a read may still see an expired entry that has not been cleaned up yet."""

    ReturnExpiredIfNotCleanedUp = 0
    NeverReturnExpired = 1


class TtlTimeCharacteristic(enum.Enum):
    """Only processing time, as in Flink."""

    ProcessingTime = 0


@dataclass(frozen=True, slots=True)
class StateTtlConfig:
    """How long state lives; build with ``StateTtlConfig.new_builder(Duration.of_hours(1))``."""

    ttl: Duration
    update_type: UpdateType = UpdateType.OnCreateAndWrite
    state_visibility: StateVisibility = StateVisibility.NeverReturnExpired
    ttl_time_characteristic: TtlTimeCharacteristic = TtlTimeCharacteristic.ProcessingTime
    cleanup_in_full_snapshot: bool = False

    UpdateType = UpdateType
    StateVisibility = StateVisibility
    TtlTimeCharacteristic = TtlTimeCharacteristic

    def __post_init__(self) -> None:
        if not isinstance(self.ttl, Duration):
            raise TypeError(f"StateTtlConfig takes a Duration, got {self.ttl!r}")
        if self.ttl.millis <= 0:
            raise ValueError("a state TTL must be positive, e.g. Duration.of_hours(1)")

    @staticmethod
    def new_builder(ttl: Duration) -> StateTtlConfigBuilder:
        return StateTtlConfigBuilder(ttl)

    @property
    def ttl_ms(self) -> int:
        return self.ttl.millis

    def is_enabled(self) -> bool:
        return self.update_type is not UpdateType.Disabled

    @property
    def update_on_read(self) -> bool:
        return self.update_type is UpdateType.OnReadAndWrite

    @property
    def return_expired(self) -> bool:
        return self.state_visibility is StateVisibility.ReturnExpiredIfNotCleanedUp

    def to_dict(self) -> dict[str, object]:
        """The JSON shape ``_metadata`` records."""
        return {
            "ttl_ms": self.ttl.millis,
            "update_type": self.update_type.name,
            "state_visibility": self.state_visibility.name,
            "cleanup_full_snapshot": self.cleanup_in_full_snapshot,
        }


class StateTtlConfigBuilder:
    """Fluent builder, as PyFlink's ``StateTtlConfig.Builder``."""

    def __init__(self, ttl: Duration) -> None:
        self._ttl = ttl
        self._update_type = UpdateType.OnCreateAndWrite
        self._visibility = StateVisibility.NeverReturnExpired
        self._cleanup_full_snapshot = False

    def set_ttl(self, ttl: Duration) -> StateTtlConfigBuilder:
        self._ttl = ttl
        return self

    def set_update_type(self, update_type: UpdateType) -> StateTtlConfigBuilder:
        if not isinstance(update_type, UpdateType):
            raise TypeError(
                f"set_update_type takes a StateTtlConfig.UpdateType, got {update_type!r}"
            )
        self._update_type = update_type
        return self

    def update_ttl_on_create_and_write(self) -> StateTtlConfigBuilder:
        return self.set_update_type(UpdateType.OnCreateAndWrite)

    def update_ttl_on_read_and_write(self) -> StateTtlConfigBuilder:
        return self.set_update_type(UpdateType.OnReadAndWrite)

    def set_state_visibility(self, visibility: StateVisibility) -> StateTtlConfigBuilder:
        if not isinstance(visibility, StateVisibility):
            raise TypeError(
                f"set_state_visibility takes a StateTtlConfig.StateVisibility, got {visibility!r}"
            )
        self._visibility = visibility
        return self

    def return_expired_if_not_cleaned_up(self) -> StateTtlConfigBuilder:
        return self.set_state_visibility(StateVisibility.ReturnExpiredIfNotCleanedUp)

    def never_return_expired(self) -> StateTtlConfigBuilder:
        return self.set_state_visibility(StateVisibility.NeverReturnExpired)

    def set_ttl_time_characteristic(
        self, characteristic: TtlTimeCharacteristic
    ) -> StateTtlConfigBuilder:
        if characteristic is not TtlTimeCharacteristic.ProcessingTime:
            raise ValueError("only processing-time TTL is supported, as in Flink")
        return self

    def use_processing_time(self) -> StateTtlConfigBuilder:
        return self

    def cleanup_full_snapshot(self) -> StateTtlConfigBuilder:
        self._cleanup_full_snapshot = True
        return self

    def disable_cleanup_in_background(self) -> StateTtlConfigBuilder:
        """Accepted for PyFlink compatibility: the hashmap backend cleans up on access only."""
        return self

    def build(self) -> StateTtlConfig:
        return StateTtlConfig(
            ttl=self._ttl,
            update_type=self._update_type,
            state_visibility=self._visibility,
            cleanup_in_full_snapshot=self._cleanup_full_snapshot,
        )


def expired(ts: int, ttl_ms: int, now_ms: int) -> bool:
    """Flink's ``TtlUtils.expired``: expired once ``now >= ts + ttl``."""
    return ts + ttl_ms <= now_ms
