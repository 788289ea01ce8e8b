"""What help() shows a user: no stray source comments, no pointers to
documents the user does not have."""

from __future__ import annotations

import inspect
import pydoc
from typing import Any, Iterator, Tuple

import pytest

import sysvkit
from sysvkit import lowlevel


def public_objects() -> Iterator[Tuple[str, Any]]:
    """Every public class and function of sysvkit and sysvkit.lowlevel,
    with the methods (dunders and inherited ones included) and properties
    of each class that sysvkit's own source defines."""
    seen = set()
    for module in (sysvkit, lowlevel):
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or callable(obj)):
                continue
            seen.add(id(obj))
            yield "%s.%s" % (module.__name__, name), obj
            if not inspect.isclass(obj):
                continue
            for attr in dir(obj):
                if attr.startswith("_") and not attr.startswith("__"):
                    continue
                member = inspect.getattr_static(obj, attr)
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member) and member.__module__.startswith("sysvkit"):
                    yield "%s.%s.%s" % (module.__name__, name, attr), member


PUBLIC = sorted(public_objects(), key=lambda item: item[0])


def test_the_public_api_is_found() -> None:
    names = {name for name, _ in PUBLIC}
    assert "sysvkit.MessageQueue.stat" in names and "sysvkit.lowlevel.semop" in names
    assert "sysvkit.SharedMemory.__enter__" in names     # inherited from the common base


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_no_source_comment_shows_in_help(name: str, obj: Any) -> None:
    try:
        comments = inspect.getcomments(obj)
    except (TypeError, OSError):
        comments = None                   # compiled: no source to take comments from
    assert comments is None, "help(%s) shows a source comment: %r" % (name, comments)


@pytest.mark.parametrize("name,obj", [(n, o) for n, o in PUBLIC if inspect.isclass(o)],
                         ids=[n for n, o in PUBLIC if inspect.isclass(o)])
def test_help_text_speaks_of_behaviour_only(name: str, obj: Any) -> None:
    text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    assert "# --" not in text, name
    assert "SPEC" not in text, "help(%s) points to a document users do not have" % name


def test_module_help_mentions_no_spec() -> None:
    import sysvkit.msgqueue
    import sysvkit.semaphores
    import sysvkit.shm
    for module in (sysvkit, lowlevel, sysvkit.shm, sysvkit.msgqueue, sysvkit.semaphores):
        assert "SPEC" not in pydoc.render_doc(module, renderer=pydoc.plaintext), module
