"""The exceptions hierro raises for bad input.

Every user-facing failure is a :class:`HierroError` whose message is one line that says what
is wrong and how to fix it; the CLI prints it and exits with code 2.

::

    HierroError (ValueError)
     + UnknownIdError        an id not in a catalog (names the closest ids)
     + CatalogError          a malformed catalog or config file (names the file and field)
     + PlanError             a parallel plan the model or hardware cannot run
     + DoesNotFitError       a plan whose memory exceeds the device (says by how much)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CatalogError", "DoesNotFitError", "HierroError", "PlanError", "UnknownIdError"]


class HierroError(ValueError):
    """Bad input: the message is one line for the user."""


class UnknownIdError(HierroError):
    """An id that no catalog holds."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
        super().__init__(f"unknown {kind} {name!r}; {hint} (see `hierro catalog {kind}s`)")
        self.kind = kind
        self.name = name


class CatalogError(HierroError):
    """A catalog or config file that does not parse or validate."""


class PlanError(HierroError):
    """A parallel plan that does not divide the model or exceed the hardware."""


class DoesNotFitError(HierroError):
    """A plan whose memory per device exceeds the device's capacity."""
