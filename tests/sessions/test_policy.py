"""Session policy presets, effective values and validation (DESIGN §4)."""

import pytest

from app.sessions.policy import PolicyBounds, PolicySettings, SessionPolicy

SETTINGS = PolicySettings(default=SessionPolicy(30, 720), bounds=PolicyBounds(5, 1440, 60, 43200))


def test_presets_are_strict_and_standard():
    presets = SETTINGS.presets()
    assert presets["strict"] == SessionPolicy(15, 480)
    assert presets["standard"] == SessionPolicy(30, 720)


def test_effective_policy_takes_each_override_or_the_default():
    assert SETTINGS.effective(None, None) == SessionPolicy(30, 720)
    assert SETTINGS.effective(10, None) == SessionPolicy(10, 720)
    assert SETTINGS.effective(None, 90) == SessionPolicy(30, 90)


@pytest.mark.parametrize(
    ("policy", "name"),
    [(SessionPolicy(15, 480), "strict"), (SessionPolicy(30, 720), "standard"), (SessionPolicy(20, 600), "custom")],
)
def test_preset_name(policy, name):
    assert SETTINGS.preset_name(policy) == name


@pytest.mark.parametrize(
    ("idle", "absolute", "errors"),
    [
        (5, 60, {}),
        (1440, 43200, {}),
        (4, 60, {"idle_minutes": "Must be between 5 and 1440 minutes."}),
        (1441, 43200, {"idle_minutes": "Must be between 5 and 1440 minutes."}),
        (30, 59, {"absolute_minutes": "Must be between 60 and 43200 minutes."}),
        (30, 43201, {"absolute_minutes": "Must be between 60 and 43200 minutes."}),
        (-5, 720, {"idle_minutes": "Must be between 5 and 1440 minutes."}),
        (120, 90, {"idle_minutes": "The idle timeout cannot be longer than the absolute timeout."}),
        (12.5, 720, {"idle_minutes": "Enter a whole number of minutes."}),
        ("30", 720, {"idle_minutes": "Enter a whole number of minutes."}),
        (True, 720, {"idle_minutes": "Enter a whole number of minutes."}),
        (
            None,
            None,
            {
                "idle_minutes": "Enter a whole number of minutes.",
                "absolute_minutes": "Enter a whole number of minutes.",
            },
        ),
    ],
)
def test_validation_gives_one_message_per_field(idle, absolute, errors):
    assert SETTINGS.validate(idle, absolute) == errors
