"""Appearance and Performance: JSON round trips, the built-in cast, seeded identities."""
import json

import pytest

from faceswap.synth import BUILTIN_ACTORS, Appearance, Performance, actor_by_name, random_actor
from faceswap.synth.params import on_set_of


def test_appearance_round_trips_through_json():
    for app in list(BUILTIN_ACTORS.values()) + [random_actor(3)]:
        data = json.loads(json.dumps(app.to_dict()))
        assert Appearance.from_dict(data) == app


def test_performance_round_trips_through_json():
    perf = Performance(yaw=12.5, smile=0.3, shake_x=0.001)
    assert Performance.from_dict(json.loads(json.dumps(perf.to_dict()))) == perf


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="nose_ring"):
        Appearance.from_dict({**BUILTIN_ACTORS["A"].to_dict(), "nose_ring": 1})
    with pytest.raises(ValueError, match="hair_style"):
        Appearance(hair_style="mohawk")


def test_cast_has_distinct_a_and_b():
    a, b = BUILTIN_ACTORS["A"], BUILTIN_ACTORS["B"]
    assert a.hair_style != b.hair_style
    assert sum(a.skin) - sum(b.skin) > 0.5  # A is clearly lighter-skinned
    assert a.eye_color[2] > a.eye_color[0] and b.eye_color[0] > b.eye_color[2]  # blue vs brown
    assert len(BUILTIN_ACTORS) >= 4


def test_random_actor_is_seeded():
    assert random_actor(7) == random_actor(7)
    assert random_actor(7) != random_actor(8)
    assert actor_by_name("random:7") == random_actor(7)
    assert actor_by_name("B") is BUILTIN_ACTORS["B"]
    with pytest.raises(KeyError, match="random:SEED"):
        actor_by_name("Z")
    with pytest.raises(KeyError):
        actor_by_name("random:x")


def test_on_set_of_keeps_the_person_and_takes_the_room():
    a, b = BUILTIN_ACTORS["A"], BUILTIN_ACTORS["B"]
    t = on_set_of(a, b)
    assert (t.background, t.background_pattern) == (b.background, b.background_pattern)
    assert (t.skin, t.hair_style, t.eye_color) == (a.skin, a.hair_style, a.eye_color)
