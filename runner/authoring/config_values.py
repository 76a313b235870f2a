"""What a ``Config`` holds and how decorators refer to it before it has a value.

``ConfigValue`` is the read-only, attribute-style view of a configuration
(``self.cfg.a.b`` and ``self.cfg['a']['b']`` alike).  ``config_expr`` and the
attribute chains of a ``Config`` at class level (``cfg.a.b``) build a
:class:`DelayEvaluator`: a decorator option that is only known once the run's
configurations are, which is after the flow file was imported.

The configurations of the flow being launched (or of the run a task belongs
to) are *active*: :func:`activate` records them, :func:`resolve` turns any
delayed value (nested in dicts, lists, ...) into a plain one against them.
"""

from __future__ import annotations

import collections.abc
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from cafstore.exception import ConfigError

#: Keys that ``**cfg`` produces in a decorator's keyword arguments; resolved and merged later.
UNPACK_KEY = "_cafstore_unpacked_config_"
_NAME = re.compile(r"^[^\d\W]\w*$")

#: name -> (value, plain) of the active configurations; None when no flow has been configured.
_ACTIVE: Optional[Dict[str, Tuple[Any, bool]]] = None


class ConfigValue(collections.abc.Mapping, dict):  # type: ignore[misc]
    """An immutable nested mapping read with dots or brackets; a ``dict`` for ``json`` and ``==``.

    Every change (``cfg['a'] = 1``, ``cfg.a = 1``, ``del``, ``update``...) raises TypeError, as
    Metaflow's does: a configuration is fixed for the whole run.
    """

    def __init__(self, data: Mapping[Any, Any]) -> None:
        converted = {key: _construct(value) for key, value in data.items()}
        object.__setattr__(self, "_data", converted)
        dict.__init__(self, converted)

    def to_dict(self) -> Dict[Any, Any]:
        """A plain (mutable) nested dict copy."""
        return _to_dict(self._data)

    def __getattr__(self, key: str) -> Any:
        if key == "_data":
            raise AttributeError(key)
        if key in self._data:
            return self._data[key]
        raise AttributeError(f"the configuration has no key {key!r} (its keys: {', '.join(map(str, self._data))})")

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def keys(self) -> Any:
        return self._data.keys()

    def __eq__(self, other: Any) -> bool:
        return self._data == (other.to_dict() if isinstance(other, ConfigValue) else other)

    def __ne__(self, other: Any) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> Any:
        return (type(self), (self.to_dict(),))

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ConfigValue is immutable: a configuration cannot change during a run")

    __setattr__ = __setitem__ = __delattr__ = __delitem__ = _immutable
    clear = update = setdefault = pop = popitem = copy = _immutable  # type: ignore[assignment]


def _construct(value: Any) -> Any:
    if isinstance(value, ConfigValue):
        return value
    if isinstance(value, collections.abc.Mapping):
        return ConfigValue(value)
    if isinstance(value, (list, tuple, set)):
        return type(value)(_construct(item) for item in value)
    return value


def _to_dict(value: Any) -> Any:
    if isinstance(value, collections.abc.Mapping):
        return {key: _to_dict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(_to_dict(item) for item in value)
    return value


class DelayEvaluator(collections.abc.Mapping):
    """An expression over the configurations, evaluated when they are known.

    ``DelayEvaluator('cfg').a.b`` (what ``cfg.a.b`` gives at class level) reads a path;
    ``config_expr('str(cfg.a)')`` is any Python expression, evaluated with each configuration
    bound to its name and the globals of the module that wrote it.  ``**evaluator`` unpacks it
    as keyword arguments once resolved (see :data:`UNPACK_KEY`).
    """

    def __init__(self, expr: str, saved_globals: Optional[Dict[str, Any]] = None) -> None:
        self._expr = expr
        self._globals = saved_globals
        self._access: Optional[List[Any]] = [] if _NAME.match(expr) else None

    def _extended(self, key: Any) -> "DelayEvaluator":
        if self._access is None:
            raise AttributeError(key)
        other = DelayEvaluator(self._expr, self._globals)
        other._access = self._access + [key]
        return other

    def __getattr__(self, name: str) -> "DelayEvaluator":
        if name.startswith("__") or name in ("_expr", "_globals", "_access"):
            raise AttributeError(name)
        return self._extended(name)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and key.startswith(UNPACK_KEY):
            return self
        if self._access is None:
            raise KeyError(key)
        return self._extended(key)

    @property
    def _unpack_key(self) -> str:
        return f"{UNPACK_KEY}{id(self)}"

    def __iter__(self) -> Iterator[str]:
        yield self._unpack_key

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"config_expr({self.text!r})"

    @property
    def text(self) -> str:
        """The expression as the user would write it."""
        parts = [self._expr]
        for key in self._access or []:
            parts.append(f".{key}" if isinstance(key, str) and _NAME.match(key) else f"[{key!r}]")
        return "".join(parts)

    def __call__(self, ctx: Any = None, deploy_time: bool = False) -> Any:
        configs = active_configs()
        if configs is None:
            raise ConfigError(
                f"The configuration expression {self.text!r} was evaluated outside a flow's run: "
                "configurations are only known once the flow's command line has read them."
            )
        bound = {
            name: value if plain or value is None else ConfigValue(value) for name, (value, plain) in configs.items()
        }
        try:
            result = eval(self._expr, dict(self._globals or {}), bound)  # noqa: S307 - the flow author's own expression
            for key in self._access or []:
                key = key() if isinstance(key, DelayEvaluator) else key
                result = result[key] if not isinstance(key, str) or not hasattr(result, key) else getattr(result, key)
        except Exception as exc:
            raise ConfigError(
                f"The configuration expression {self.text!r} could not be evaluated: {type(exc).__name__}: {exc}. "
                f"Known configurations: {', '.join(sorted(configs)) or 'none'}."
            ) from exc
        return result


def config_expr(expr: str) -> DelayEvaluator:
    """``config_expr('cfg.a.b')``: a value computed from the configurations when they are known.

    Usable wherever a decorator option or a parameter default is expected. The expression may use
    any name of the module that calls ``config_expr`` (its globals are kept), and each
    configuration by its name.
    """
    import inspect  # only here: it costs ~15 ms to import, and tasks rarely need it

    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    return DelayEvaluator(expr, dict(caller.f_globals) if caller is not None else None)


def activate(values: Optional[Mapping[str, Tuple[Any, bool]]]) -> None:
    """Make ``values`` (config name -> (value, plain)) the configurations delayed values read."""
    global _ACTIVE
    _ACTIVE = None if values is None else dict(values)


def active_configs() -> Optional[Dict[str, Tuple[Any, bool]]]:
    return _ACTIVE


def configs_view() -> ConfigValue:
    """Every active configuration by name (what ``ctx.configs`` of a parameter default is)."""
    return ConfigValue({name: value for name, (value, _plain) in (_ACTIVE or {}).items()})


def is_delayed(value: Any) -> bool:
    """True if ``value`` (or anything nested in it) waits for the configurations."""
    if isinstance(value, DelayEvaluator):
        return True
    if isinstance(value, dict):
        return any(is_delayed(k) or is_delayed(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(is_delayed(item) for item in value)
    return False


def resolve(value: Any, to_dict: bool = True) -> Any:
    """``value`` with every delayed part evaluated (ConfigValue results as plain dicts)."""
    if isinstance(value, DelayEvaluator):
        result = value()
        return result.to_dict() if to_dict and isinstance(result, ConfigValue) else result
    if isinstance(value, dict) and not isinstance(value, ConfigValue):
        return {resolve(k, to_dict): resolve(v, to_dict) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(resolve(item, to_dict) for item in value)
    return value


def resolve_kwargs(kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """A decorator's keyword arguments, resolved, with ``**cfg`` unpacked into them."""
    result: Dict[str, Any] = {}
    for key, value in kwargs.items():
        if key.startswith(UNPACK_KEY):
            unpacked = resolve(value)
            if not isinstance(unpacked, collections.abc.Mapping):
                raise ConfigError(
                    f"**{value.text} must be a mapping of option names to values, not {type(unpacked).__name__}."
                )
            result.update(unpacked)
        else:
            result[key] = resolve(value)
    return result
