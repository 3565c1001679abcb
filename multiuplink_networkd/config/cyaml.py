"""PyYAML's C parser without the rest of PyYAML: the configure unit parses on the boot critical path.

``import yaml`` runs yaml/__init__.py, which loads all of pure-Python PyYAML
(~13 ms, half of what a parse and validation used to cost): the reader compiles a large unicode regex,
the constructor imports datetime and base64, the dumper loads emitter and
representer. We need only libyaml's composer (``yaml._yaml.CParser``), the
resolver that tags plain scalars, and four scalar constructors.

``yaml/_yaml.so`` does ``import yaml`` and, once, copies error and node classes
out of yaml.error, yaml.reader, yaml.scanner and the rest. Here it loads
through a ``yaml`` package object that has not run __init__.py: the real
yaml.error, tokens, events, nodes and resolver, and stand-in modules holding
only the error classes of the eight modules we skip. The stand-ins then leave
``sys.modules``; the package stays (``_yaml`` keeps its node classes for the
life of the process) and runs the real __init__.py into itself the first time
anything else is asked of it, so a later ``import yaml`` anywhere is complete
PyYAML, whose error classes the C parser then raises too. Before that it raises
the stand-ins: same names, bases and messages. Catch :data:`YAMLError` or
:data:`MarkedYAMLError`, which are PyYAML's own either way.

Int, float, bool and null are built by copies of SafeConstructor's code; any
other tag (timestamp, binary, merge, ``!custom``) goes to PyYAML's SafeConstructor.

A PyYAML other than 6.0.x, no C extension, yaml already imported, or any
failure here: plain ``import yaml`` with CSafeLoader and SafeConstructor, as
does ``MULTIUPLINK_PLAIN_PYYAML=1`` (for tests).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any, TypeVar

    _Number = TypeVar("_Number", int, float)

PLAIN_ENV = "MULTIUPLINK_PLAIN_PYYAML"
_VERSIONS = ("6.0", "6.0.1", "6.0.2")
"""PyYAML releases whose _yaml.pyx reads exactly the attributes provided here."""
_REAL = ("error", "tokens", "events", "nodes", "resolver")
_STAND_INS = {"reader": "ReaderError", "scanner": "ScannerError", "parser": "ParserError",
              "composer": "ComposerError", "constructor": "ConstructorError", "emitter": "EmitterError",
              "serializer": "SerializerError", "representer": "RepresenterError"}
_MARKED = frozenset(("ScannerError", "ParserError", "ComposerError", "ConstructorError"))


def _fast_loader() -> Any:
    """CParser + Resolver loaded without yaml/__init__.py; raises if that cannot be done safely."""
    spec = next(filter(None, (finder.find_spec("yaml", None) for finder in sys.meta_path)))
    if not (spec.origin and spec.submodule_search_locations):
        raise ImportError("yaml is not an ordinary package")
    with open(spec.origin, encoding="utf-8") as init:
        source = init.read()
    if not any(f"\n__version__ = '{version}'\n" in source for version in _VERSIONS):
        raise ImportError("not a PyYAML release this module knows")
    package = sys.modules["yaml"] = ModuleType("yaml")
    package.__spec__, package.__loader__, package.__file__ = spec, spec.loader, spec.origin
    package.__path__, package.__package__ = spec.submodule_search_locations, "yaml"
    try:
        for name in _REAL:
            __import__("yaml." + name)
        for name, error in _STAND_INS.items():
            stand_in = sys.modules["yaml." + name] = ModuleType("yaml." + name)
            setattr(stand_in, error, _error_class(name, error))
            setattr(package, name, stand_in)
        try:
            import yaml._yaml
        finally:
            for name in _STAND_INS:
                del sys.modules["yaml." + name]
                delattr(package, name)
    except BaseException:  # a Cython module that failed to initialise can be imported again
        for name in [name for name in sys.modules if name == "yaml" or name.startswith("yaml.")]:
            del sys.modules[name]
        raise
    package.__getattr__ = _completion(package, yaml._yaml)  # type: ignore[method-assign]
    from yaml.resolver import Resolver

    class Loader(yaml._yaml.CParser, Resolver):  # CSafeLoader without SafeConstructor
        def __init__(self, stream: str) -> None:
            yaml._yaml.CParser.__init__(self, stream)
            Resolver.__init__(self)

    return Loader


def _error_class(module: str, name: str) -> type:
    import yaml.error

    namespace: dict[str, Any] = {"__module__": "yaml." + module}
    if name == "ReaderError":  # has its own fields and message
        def __init__(self: Any, *args: Any) -> None:
            import yaml.reader

            yaml.reader.ReaderError.__init__(self, *args)

        def __str__(self: Any) -> str:
            import yaml.reader

            return yaml.reader.ReaderError.__str__(self)

        namespace.update(__init__=__init__, __str__=__str__)
    return type(name, (yaml.error.MarkedYAMLError if name in _MARKED else yaml.error.YAMLError,), namespace)


def _completion(package: ModuleType, c_module: ModuleType) -> Any:
    def __getattr__(name: str) -> Any:
        """First use of anything not loaded: run PyYAML's __init__.py into the package."""
        del package.__getattr__
        package.__spec__.loader.exec_module(package)  # type: ignore[union-attr]
        for module, error in _STAND_INS.items():  # the C parser now raises PyYAML's own classes
            setattr(c_module, error, getattr(sys.modules["yaml." + module], error))
        return getattr(package, name)

    return __getattr__


_Loader: Any = None
FAST = False
"""True when the C parser was loaded without yaml/__init__.py."""
if os.environ.get(PLAIN_ENV) != "1" and not any(name == "yaml" or name.startswith("yaml.") for name in sys.modules):
    try:
        _Loader = _fast_loader()
        FAST = True
    except Exception:
        pass
if not FAST:
    import yaml

    _Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # Debian's python3-yaml always has the C one
BYTE_OFFSETS = any(base.__name__ == "CParser" for base in _Loader.__mro__)
"""libyaml's reader errors give a byte offset into the UTF-8 text; PyYAML's pure-Python reader a character index."""

# Either way, these are PyYAML's own classes (noqa: yaml is loaded one way or the other above).
from yaml.error import MarkedYAMLError as MarkedYAMLError, YAMLError as YAMLError  # noqa: E402
from yaml.events import (  # noqa: E402
    CollectionEndEvent as CollectionEndEvent,
    CollectionStartEvent as CollectionStartEvent,
    DocumentEndEvent as DocumentEndEvent,
    StreamEndEvent as StreamEndEvent,
)
from yaml.nodes import (  # noqa: E402
    MappingNode as MappingNode,
    Node as Node,
    ScalarNode as ScalarNode,
    SequenceNode as SequenceNode,
)


def compose(text: str) -> Node | None:
    """One YAML document's nodes, as ``yaml.compose(text, Loader=yaml.CSafeLoader)`` gives them."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    finally:
        loader.dispose()


def documents(text: str) -> Generator[Node, None, None]:
    """Each YAML document's nodes in turn, composed only when asked for: like netplan (libyaml's
    ``yaml_parser_load`` once), a reader that takes the first never parses the rest."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def too_deep(text: str, limit: int, first_only: bool) -> Any:
    """Where a collection first nests deeper than ``limit`` (its start mark), else None; composes nothing.

    libyaml's composer recurses in C, and some 30000 nested levels crash the process, while its parser
    keeps its stacks on the heap: walking the events first bounds the composer's depth exactly, at
    about 40% of the time composing takes. ``first_only`` stops after the first document.
    """
    loader = _Loader(text)
    try:
        depth = 0
        while True:
            event = loader.get_event()
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > limit:
                    return event.start_mark
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            elif isinstance(event, StreamEndEvent) or (first_only and isinstance(event, DocumentEndEvent)):
                return None
    finally:
        loader.dispose()


_constructor: Any = None


def construct_scalar(node: ScalarNode) -> Any:
    """The value of a scalar, as ``yaml.constructor.SafeConstructor`` makes it."""
    construct = _IMPLICIT.get(node.tag) if FAST else None
    if construct is not None:
        return construct(node.value)
    global _constructor
    if _constructor is None:
        import yaml

        _constructor = yaml.constructor.SafeConstructor()
    return _constructor.construct_object(node, deep=True)  # deep: !!set and the like fail as in yaml.load


# Copies of SafeConstructor's construct_yaml_{null,bool,int,float} (PyYAML 6.0, YAML 1.1).

_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
_INF = 1e300
while _INF != _INF * _INF:
    _INF *= _INF
_NAN = -_INF / _INF


def _int(value: str) -> int:
    value = value.replace("_", "")
    sign = -1 if value[0] == "-" else +1
    if value[0] in "+-":
        value = value[1:]
    if value == "0":
        return 0
    if value.startswith("0b"):
        return sign * int(value[2:], 2)
    if value.startswith("0x"):
        return sign * int(value[2:], 16)
    if value[0] == "0":
        return sign * int(value, 8)
    if ":" in value:  # sexagesimal: 1:30 is 90
        return sign * _base60([int(part) for part in value.split(":")], 0)
    return sign * int(value)


def _float(value: str) -> float:
    value = value.replace("_", "").lower()
    sign = -1 if value[0] == "-" else +1
    if value[0] in "+-":
        value = value[1:]
    if value == ".inf":
        return sign * _INF
    if value == ".nan":
        return _NAN
    if ":" in value:
        return sign * _base60([float(part) for part in value.split(":")], 0.0)
    return sign * float(value)


def _base60(digits: list[_Number], total: _Number) -> _Number:
    base = 1  # least significant first, as PyYAML adds them: float rounding depends on the order
    for digit in reversed(digits):
        total += digit * base
        base *= 60
    return total


_IMPLICIT = {
    "tag:yaml.org,2002:null": lambda value: None,
    "tag:yaml.org,2002:bool": lambda value: _BOOLS[value.lower()],
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
}
