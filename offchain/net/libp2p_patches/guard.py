"""What every py-libp2p patch checks before it touches the library, and the error it raises.

A patch reaches into py-libp2p's internals, which change between releases without notice, so
each one is written against one version (``PINNED_VERSION``, the pin in requirements/net.txt)
and checks, before it changes anything, that the installed library is that version and that each
attribute it replaces or reads has the shape it was written for. Anything else is a
``PatchError`` at start-up: after an upgrade a patch either still does exactly what it says or
stops the agent with the name of what moved, never silently does nothing.
"""

import importlib.metadata
import inspect
import os
from collections.abc import Iterable

PINNED_VERSION = "0.8.1"

# Comma-separated patch names to leave out (``bench/router.py`` measures each one's gain so).
OFF_ENV = "EMC_LIBP2P_PATCHES_OFF"


class PatchError(RuntimeError):
    """A py-libp2p patch cannot apply, or did not take effect."""


def require_pinned_version() -> None:
    """Raise ``PatchError`` unless the installed py-libp2p is the version the patches target."""
    installed = importlib.metadata.version("libp2p")
    if installed != PINNED_VERSION:
        raise PatchError(
            f"py-libp2p {installed} is installed, the patches in offchain/net/libp2p_patches are "
            f"written for {PINNED_VERSION} (requirements/net.txt): check each against the new "
            "version (docs/upstream/) and move the pin"
        )


def require_method(owner: object, name: str, params: Iterable[str]) -> None:
    """Raise ``PatchError`` unless ``owner.name`` is a function taking exactly ``params``."""
    where = f"{getattr(owner, '__qualname__', getattr(owner, '__name__', owner))}.{name}"
    method = inspect.getattr_static(owner, name, None)
    if isinstance(method, staticmethod | classmethod):
        method = method.__func__
    if not inspect.isfunction(method):
        raise PatchError(f"py-libp2p patch: {where} is not a function any more")
    found = tuple(inspect.signature(method).parameters)
    if found != tuple(params):
        raise PatchError(
            f"py-libp2p patch: {where} takes {found}, the patch was written for {tuple(params)}"
        )


def require_type(value: object, expected: type | tuple[type, ...], what: str) -> None:
    """Raise ``PatchError`` unless ``value``'s type is exactly ``expected`` (or one of them)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    if type(value) not in types:
        names = " or ".join(t.__qualname__ for t in types)
        raise PatchError(
            f"py-libp2p patch: {what} is a {type(value).__qualname__}, expected {names}"
        )


def disabled(known: Iterable[str]) -> frozenset[str]:
    """Return the patches named in ``EMC_LIBP2P_PATCHES_OFF`` (an unknown name is an error)."""
    names = frozenset(n.strip() for n in os.environ.get(OFF_ENV, "").split(",") if n.strip())
    unknown = names - set(known)
    if unknown:
        raise PatchError(f"{OFF_ENV}: unknown patches {sorted(unknown)}, known {sorted(known)}")
    return names
