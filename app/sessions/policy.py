"""Session policy: presets, bounds and the effective idle/absolute minutes of an account."""

from dataclasses import dataclass

PRESET_STRICT = "strict"
PRESET_STANDARD = "standard"
PRESET_CUSTOM = "custom"
STRICT_IDLE_MINUTES = 15
STRICT_ABSOLUTE_MINUTES = 8 * 60


@dataclass(frozen=True)
class SessionPolicy:
    idle_minutes: int
    absolute_minutes: int


@dataclass(frozen=True)
class PolicyBounds:
    idle_min: int
    idle_max: int
    absolute_min: int
    absolute_max: int


@dataclass(frozen=True)
class PolicySettings:
    """The system side of the policy: the default (Standard) and the bounds, from config."""

    default: SessionPolicy
    bounds: PolicyBounds

    @classmethod
    def from_config(cls, config) -> "PolicySettings":
        return cls(
            default=SessionPolicy(config["SESSION_IDLE_MINUTES"], config["SESSION_ABSOLUTE_MINUTES"]),
            bounds=PolicyBounds(
                config["SESSION_IDLE_MINUTES_MIN"],
                config["SESSION_IDLE_MINUTES_MAX"],
                config["SESSION_ABSOLUTE_MINUTES_MIN"],
                config["SESSION_ABSOLUTE_MINUTES_MAX"],
            ),
        )

    def presets(self) -> dict[str, SessionPolicy]:
        return {
            PRESET_STRICT: SessionPolicy(STRICT_IDLE_MINUTES, STRICT_ABSOLUTE_MINUTES),
            PRESET_STANDARD: self.default,
        }

    def effective(self, idle_override: int | None, absolute_override: int | None) -> SessionPolicy:
        """An account's policy: each override, or the system default where it is NULL."""
        return SessionPolicy(
            idle_override if idle_override is not None else self.default.idle_minutes,
            absolute_override if absolute_override is not None else self.default.absolute_minutes,
        )

    def preset_name(self, policy: SessionPolicy) -> str:
        for name, preset in self.presets().items():
            if preset == policy:
                return name
        return PRESET_CUSTOM

    def validate(self, idle_minutes, absolute_minutes) -> dict[str, str]:
        """Per-field messages for an effective policy; empty when it is acceptable."""
        b = self.bounds
        errors = {}
        for field, value, low, high in (
            ("idle_minutes", idle_minutes, b.idle_min, b.idle_max),
            ("absolute_minutes", absolute_minutes, b.absolute_min, b.absolute_max),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                errors[field] = "Enter a whole number of minutes."
            elif not low <= value <= high:
                errors[field] = f"Must be between {low} and {high} minutes."
        if not errors and idle_minutes > absolute_minutes:
            errors["idle_minutes"] = "The idle timeout cannot be longer than the absolute timeout."
        return errors
