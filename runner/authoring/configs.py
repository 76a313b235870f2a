"""``Config``: a configuration of the flow, fixed before anything runs.

A ``Config`` is a parameter (stored as an artifact of every task, listed in
``current.parameter_names``) whose value is known as soon as the flow's
command line starts, so that decorators can use it (``@retry(times=cfg.n)``).
Its value comes from, in order:

1. ``python flow.py --config NAME FILE`` or ``--config-value NAME JSON``
   (the top-level options; one of the two per configuration);
2. else the environment: ``METAFLOW_FLOW_CONFIG`` / ``CAFSTORE_FLOW_CONFIG``
   (a JSON object of name -> file) and ``METAFLOW_FLOW_CONFIG_VALUE`` /
   ``CAFSTORE_FLOW_CONFIG_VALUE`` (a JSON object of name -> value), read only
   when no such option is on the command line, as click reads an option's
   environment variable;
3. else ``default`` (a file path, or a function of the parameter context
   returning one) or ``default_value`` (a dict, a JSON string, or a function
   returning either).

Text is parsed by ``parser`` (a function or its dotted name) if given, else as
JSON; ``plain=True`` keeps the parsed value as is instead of a
:class:`~cafstore.runner.authoring.config_values.ConfigValue`.
"""

from __future__ import annotations

import collections.abc
import importlib
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from cafstore.exception import ConfigError
from cafstore.runner.authoring import config_values
from cafstore.runner.authoring.config_values import ConfigValue, DelayEvaluator
from cafstore.runner.authoring.parameters import Parameter, ParameterContext, flow_parameters

FILE_ENV = ("CAFSTORE_FLOW_CONFIG", "METAFLOW_FLOW_CONFIG")
VALUE_ENV = ("CAFSTORE_FLOW_CONFIG_VALUE", "METAFLOW_FLOW_CONFIG_VALUE")


class Config(Parameter, collections.abc.Mapping):  # type: ignore[misc]
    """``Config(name, default=FILE, default_value=VALUE, help=, required=, parser=, plain=False)``.

    At class level ``cfg.a.b`` and ``cfg['a']`` are delayed expressions for decorators
    (``@environment(vars={'X': cfg.x})``, ``@environment(**cfg)``); inside a step
    ``self.cfg`` is the value, read-only.
    """

    IS_CONFIG_PARAMETER = True

    def __init__(
        self,
        name: str,
        default: Any = None,
        default_value: Any = None,
        help: Optional[str] = None,
        required: Optional[bool] = None,
        parser: Any = None,
        plain: bool = False,
        show_default: bool = True,
        **unknown: Any,
    ) -> None:
        super().__init__(name, help=help, type=str, required=bool(required), show_default=show_default, **unknown)
        if default is not None and default_value is not None:
            self.errors.append("give default (a file) or default_value (a value), not both")
        if parser is not None and not (callable(parser) or isinstance(parser, str)):
            self.errors.append(f"parser must be a function or its dotted name, not {type(parser).__name__}")
        self.default = default if default is not None else default_value
        self.default_is_file = default is not None
        self.parser = parser
        self.plain = bool(plain)

    # -- class level: delayed expressions ---------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(DelayEvaluator(self.name), name)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and key.startswith(config_values.UNPACK_KEY):
            return DelayEvaluator(self.name)  # ``**cfg``: the whole configuration, merged by the decorator
        return DelayEvaluator(self.name)[key]

    def __iter__(self) -> Any:
        return iter([config_values.UNPACK_KEY + self.name])

    def __len__(self) -> int:
        return 1

    def keys(self) -> Any:
        return [config_values.UNPACK_KEY + self.name]

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    # -- in a step: the value --------------------------------------------------
    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        value = super().__get__(obj, objtype)
        if value is self or value is None or self.plain:
            return value
        return ConfigValue(value)

    @property
    def option(self) -> str:
        return f"--config {self.name}"

    @property
    def type_name(self) -> str:
        return "config"

    def resolve(self, cli_value: Optional[str], environ: Mapping[str, str], context: ParameterContext) -> Any:
        """The value read when the command line started (a plain dict, as Metaflow stores it)."""
        found = (config_values.active_configs() or {}).get(self.name)
        value = found[0] if found is not None else None
        return value.to_dict() if isinstance(value, ConfigValue) else value

    # -- reading ------------------------------------------------------------------
    def parse(self, text: str, where: str) -> Any:
        """Parse ``text`` (from ``where``: a file or an option) into the configuration's value."""
        if self.parser is not None:
            parser = _load_parser(self.parser, self.name)
            try:
                value = parser(text)
            except Exception as exc:
                raise ConfigError(
                    f"The parser of configuration {self.name!r} failed on {where}: {type(exc).__name__}: {exc}."
                ) from exc
            if not self.plain and not isinstance(value, collections.abc.Mapping):
                raise ConfigError(
                    f"The parser of configuration {self.name!r} returned a {type(value).__name__} for {where}; "
                    "it must return a mapping (or declare the Config with plain=True)."
                )
            return value
        if self.plain:
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"Configuration {self.name!r}: {where} is not valid JSON ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno}). Give a JSON object, or a parser= to the Config."
            ) from exc
        if not isinstance(value, collections.abc.Mapping):
            raise ConfigError(
                f"Configuration {self.name!r}: {where} holds a JSON {type(value).__name__}, not an object; "
                "a configuration is a mapping (or declare the Config with plain=True)."
            )
        return value

    def read_file(self, path: str, what: str) -> Any:
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"The {what} {path!r} of configuration {self.name!r} could not be read: {exc.strerror or exc} "
                f"(relative paths are relative to {os.getcwd()})."
            ) from exc
        return self.parse(text, f"the file {path!r}")


def _load_parser(parser: Any, config: str) -> Callable[[str], Any]:
    if callable(parser):
        return parser
    module_name, _, func = str(parser).rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), func, None) if module_name else None
    except ImportError as exc:
        raise ConfigError(f"Configuration {config!r}: cannot import the parser {parser!r} ({exc}).") from exc
    if not callable(found):
        raise ConfigError(
            f"Configuration {config!r}: the parser {parser!r} is not a function "
            "(give a function, or its full dotted name like 'mypackage.parsers.parse')."
        )
    return found


def flow_configs(flow_cls: type) -> List[Tuple[str, Config]]:
    """``(attribute, Config)`` of a flow class, in declaration order."""
    return [(attr, param) for attr, param in flow_parameters(flow_cls) if isinstance(param, Config)]


def _env_pairs(environ: Mapping[str, str], names: Sequence[str]) -> Optional[List[Tuple[str, Any]]]:
    for var in names:
        text = environ.get(var)
        if text is None:
            continue
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"The environment variable {var} is not valid JSON ({exc.msg}); it must be a JSON object "
                'of configuration names, e.g. {"cfg": ...}.'
            ) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"The environment variable {var} must be a JSON object of configuration names.")
        return list(loaded.items())
    return None


def read_configs(
    flow_cls: type,
    files: Sequence[Tuple[str, str]],
    values: Sequence[Tuple[str, str]],
    user: str,
    environ: Optional[Mapping[str, str]] = None,
) -> Dict[str, Tuple[Any, bool]]:
    """Every configuration's value, by name: ``(value, plain)``.

    ``files`` and ``values``: the ``--config NAME FILE`` and ``--config-value NAME JSON`` pairs.
    """
    env = os.environ if environ is None else environ
    configs = {param.name: param for _attr, param in flow_configs(flow_cls)}
    if not files and not values:
        files = [(n, v) for n, v in _env_pairs(env, FILE_ENV) or []]
        values = [(n, v if isinstance(v, str) else json.dumps(v)) for n, v in _env_pairs(env, VALUE_ENV) or []]
    given_files, given_values = dict(files), dict(values)
    for name in list(given_files) + list(given_values):
        if name not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ConfigError(f"{flow_cls.__name__} has no configuration {name!r} (its configurations: {known}).")
    both = sorted(set(given_files) & set(given_values))
    if both:
        raise ConfigError(
            f"Configuration {both[0]!r} was given both a file and a value; give one of --config or --config-value."
        )
    result: Dict[str, Tuple[Any, bool]] = {}
    for name, param in configs.items():
        value: Any
        if name in given_files:
            value = param.read_file(given_files[name], "file")
        elif name in given_values:
            value = param.parse(given_values[name], f"the value given for it ({_clip(given_values[name])!r})")
        else:
            value = _default(param, flow_cls, user)
        if value is None and param.required:
            raise ConfigError(
                f"Missing required configuration {name!r}: pass --config {name} FILE or "
                f"--config-value {name} JSON before the command (e.g. python flow.py --config {name} cfg.json run)."
            )
        result[name] = (value, param.plain)
    return result


def _default(param: Config, flow_cls: type, user: str) -> Any:
    default = param.default
    if callable(default):
        context = ParameterContext(flow_cls.__name__, user, param.name)
        try:
            default = default(context)
        except Exception as exc:
            raise ConfigError(
                f"The default of configuration {param.name!r} is a function, and calling it failed: "
                f"{type(exc).__name__}: {exc}."
            ) from exc
    if default is None:
        return None
    if param.default_is_file:
        return param.read_file(str(default), "default file")
    if isinstance(default, str):
        return param.parse(default, "its default_value")
    return default


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def configure(flow_cls: type, values: Dict[str, Tuple[Any, bool]]) -> None:
    """Make ``values`` the flow's configurations and resolve every option that waited for them."""
    from cafstore.runner.authoring.decorators import resolve_deferred

    config_values.activate(values)
    resolve_deferred(flow_cls)


def configure_from_artifacts(flow_cls: type, load: Callable[[str], Any]) -> None:
    """In a task: the run's configurations are its artifacts (``load(attr)``); make them active."""
    from cafstore.runner.authoring.decorators import has_deferred

    found = flow_configs(flow_cls)
    if not found and not has_deferred():
        return
    values = {}
    for attr, param in found:
        values[param.name] = (load(attr), param.plain)
    configure(flow_cls, values)
