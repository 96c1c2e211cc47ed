"""Synthetic actors: identities (appearance), performances, and a renderer whose truth (landmarks, mask, true swap) is exact."""
from faceswap.synth.params import BUILTIN_ACTORS, Appearance, Performance, actor_by_name, random_actor
from faceswap.synth.performance import random_performance
from faceswap.synth.render import Render, render

# Bump whenever the renderer's look changes: anything trained on renders (the evaluation's judges) keys on it.
RENDERER_VERSION = 2

__all__ = ["Appearance", "Performance", "Render", "BUILTIN_ACTORS", "random_actor", "random_performance", "render",
           "actor_by_name", "RENDERER_VERSION"]
