"""Container names as dockerd makes and checks them: ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` and, when
none is given, an ``adjective_surname`` (moby pkg/namesgenerator, a shorter list)."""

from __future__ import annotations

import random
import re

__all__ = ["random_name", "valid_name"]

_VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_LEFT = ("admiring", "brave", "clever", "dazzling", "eager", "focused", "gifted", "happy",
         "jolly", "keen", "lucid", "modest", "nifty", "optimistic", "peaceful", "quirky",
         "relaxed", "serene", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous")
_RIGHT = ("albattani", "babbage", "curie", "darwin", "euclid", "fermat", "galileo", "hopper",
          "hypatia", "johnson", "kepler", "lovelace", "mayer", "noether", "pasteur", "ritchie",
          "shannon", "thompson", "turing", "varahamihira", "wozniak", "yalow", "zhukovsky")


def valid_name(name: str) -> bool:
    return bool(_VALID.match(name))


def random_name() -> str:
    rng = random.SystemRandom()
    return f"{rng.choice(_LEFT)}_{rng.choice(_RIGHT)}"
