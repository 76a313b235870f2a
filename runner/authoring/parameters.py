"""Run parameters: ``Parameter``, ``JSONType`` and ``IncludeFile``.

A parameter is declared at class level and read in every step as
``self.<attribute>``; its value is fixed when the run starts and stored as
an artifact of every task.  The value comes from the command line
(``--<name>``), else the environment (``CAFSTORE_RUN_<NAME>``), else the
default; strings from the first two are converted with the parameter's type.

Mistakes in a declaration are not raised while the flow file is imported
(Python would print a bare traceback before cafstore's command line runs):
they are kept on the parameter and reported by :func:`check_declarations`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from cafstore.exception import ParameterAssignmentError, ParameterError, ParameterValueError

#: Option names of ``run`` and of the flow command itself: a parameter cannot take them.
RESERVED = frozenset(
    {
        "tag",
        "max-workers",
        "max-num-splits",
        "run-id-file",
        "store",
        "namespace",
        "no-pylint",
        "help",
        "origin-run-id",
        "run-id",
        "task-id",
        "params",
        "with",
        "quiet",
        "production",
        "authorize",
        "generate-new-token",
    }
)
_TRUE = frozenset({"true", "1", "yes", "y", "t", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "off"})
_UNSET: Any = object()


class JSONTypeClass:
    """``type=JSONType``: the value is JSON text, decoded into Python values."""

    name = "JSON"

    def __repr__(self) -> str:
        return "JSONType"


JSONType = JSONTypeClass()


class ParameterContext:
    """What a callable default receives (Metaflow's ``ParameterContext`` fields).

    ``configs``: every configuration of the flow by name (attribute-style), so a default can be
    computed from them (``ctx.configs.cfg.n + 1``).
    """

    def __init__(self, flow_name: str, user_name: str, parameter_name: str, configs: Any = None) -> None:
        self.flow_name = flow_name
        self.user_name = user_name
        self.parameter_name = parameter_name
        self.logger = print
        self.ds_type = "cafstore"
        if configs is None:
            from cafstore.runner.authoring.config_values import configs_view

            configs = configs_view()
        self.configs = configs


class Parameter:
    """``Parameter(name, help=, default=, type=, required=, separator=)``.

    ``type`` is one of str, int, float, bool, JSONType or any callable
    taking a string; without it the type of ``default`` is used (str when
    there is none).  ``separator`` splits a string value into a list of
    strings.  A callable ``default`` is called once when the run starts
    (with a :class:`ParameterContext` if it takes an argument).
    """

    IS_INCLUDE_FILE = False
    IS_CONFIG_PARAMETER = False  # a Config: set before the command runs, not by a `run` option

    def __init__(
        self,
        name: str,
        help: Optional[str] = None,
        default: Any = None,
        type: Any = None,
        required: bool = False,
        separator: Optional[str] = None,
        show_default: bool = True,
        **unknown: Any,
    ) -> None:
        self.name = name
        self.help = help
        self.default = default
        self.required = bool(required)
        self.separator = separator
        self.show_default = show_default
        self.attr: str = ""  # the class attribute, set by __set_name__
        self.errors: List[str] = []
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
            self.errors.append(f"the name {name!r} must be a non-empty string of letters, digits, '-' and '_'")
        elif name.lower() in RESERVED or name.lower().replace("_", "-") in RESERVED:
            self.errors.append(f"the name {name!r} is an option of `run` itself; choose another name")
        if unknown:
            self.errors.append(f"unknown option(s) {', '.join(sorted(unknown))}")
        if type is None:
            if default is not None and not callable(default):
                type = builtin_type_of(default)
            else:
                type = str
        self.type = type
        if separator is not None and (type is not str or not isinstance(separator, str) or not separator):
            self.errors.append("separator= works only with string parameters (type=str) and must be a non-empty string")

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- inside a run: read-only ---------------------------------------
    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__.get("_cafstore_state")
        if state is None:
            return self  # a flow object outside a run: no values yet
        return state.read_parameter(self.attr)

    def __set__(self, obj: Any, value: Any) -> None:
        raise ParameterAssignmentError(
            f"Cannot assign to self.{self.attr}: it is the parameter {self.name!r}, and parameters are "
            f"fixed for the whole run. Copy it to another artifact and change that instead, e.g. "
            f"self.my_{self.attr} = self.{self.attr}."
        )

    # -- at run start: from strings to values ---------------------------
    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def env_var(self) -> str:
        return "CAFSTORE_RUN_" + self.name.upper().replace("-", "_")

    @property
    def env_vars(self) -> Tuple[str, str]:
        """Where a value is read from the environment: cafstore's name, then Metaflow's (``METAFLOW_RUN_<NAME>``)."""
        return self.env_var, "METAFLOW_RUN_" + self.name.upper().replace("-", "_")

    def env_value(self, environ: Mapping[str, str]) -> Tuple[str, Optional[str]]:
        """``(variable, value)`` of the first of :attr:`env_vars` that is set (value None if none is)."""
        for var in self.env_vars:
            if var in environ:
                return var, environ[var]
        return self.env_var, None

    @property
    def type_name(self) -> str:
        if self.type is JSONType:
            return "JSON"
        return getattr(self.type, "__name__", type(self.type).__name__)

    def convert(self, text: str, source: str) -> Any:
        """Turn ``text`` (from ``source``: the option or the environment variable) into a value."""
        where = f"parameter {self.name!r} ({source})"
        if self.type is str:
            return text.split(self.separator) if self.separator else text
        if self.type is bool:
            word = text.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ParameterError(
                f"Invalid value {text!r} for {where}: a boolean must be one of true/false, yes/no, 1/0 (any case)."
            )
        if self.type is JSONType:
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ParameterError(
                    f"Invalid JSON {_clip(text)!r} for {where}: {exc.msg} at line {exc.lineno} column "
                    f"{exc.colno} (character {exc.pos}). Quote the whole value for the shell, e.g. "
                    f'{self.option} \'{{"key": "value"}}\'.'
                ) from exc
        if self.type in (int, float):
            try:
                return self.type(text.strip())
            except ValueError as exc:
                kind = "an integer" if self.type is int else "a number"
                raise ParameterError(f"Invalid value {text!r} for {where}: expected {kind}.") from exc
        if callable(self.type):
            try:
                return self.type(text)
            except Exception as exc:
                raise ParameterError(
                    f"Invalid value {text!r} for {where}: its type {self.type_name} rejected it "
                    f"({type(exc).__name__}: {exc})."
                ) from exc
        raise ParameterError(f"{where} has type {self.type!r}, which is not callable.")

    def resolve(self, cli_value: Optional[str], environ: Mapping[str, str], context: ParameterContext) -> Any:
        """The run's value: command line, else environment, else default."""
        if cli_value is not None:
            try:
                return self.convert(cli_value, self.option)
            except ParameterError as exc:  # the user typed it: a usage error (exit 2), as click's own are
                raise ParameterValueError(str(exc)) from exc
        env_var, env_value = self.env_value(environ)
        if env_value is not None:
            return self.convert(env_value, f"environment variable {env_var}")
        default = self.default
        if _is_delayed(default):  # config_expr(...): a value of the configurations, not a deploy-time function
            default = _resolve_delayed(default, self)
        elif callable(default) and not isinstance(default, type):
            default = check_deploy_time_value(self, call_default(default, context, self))
        if default is None:
            if _resolve_delayed(self.required, self) if _is_delayed(self.required) else self.required:
                raise ParameterError(
                    f"Missing required parameter {self.name!r}: pass {self.option} VALUE on the command line "
                    f"(or set {self.env_var})."
                )
            return None
        if isinstance(default, str) and (self.type is not str or self.separator):
            return self.convert(default, "default value")
        return default


def builtin_type_of(value: Any) -> Any:
    if isinstance(value, bool):
        return bool
    if isinstance(value, (int, float, str)):
        return type(value)
    if isinstance(value, (list, dict)):
        return JSONType
    return str


def _is_delayed(value: Any) -> bool:
    from cafstore.runner.authoring.config_values import is_delayed

    return is_delayed(value)


def _resolve_delayed(value: Any, param: Parameter) -> Any:
    from cafstore.exception import ConfigError
    from cafstore.runner.authoring.config_values import resolve

    try:
        return resolve(value)
    except ConfigError as exc:
        raise ConfigError(f"In parameter {param.name!r}: {exc}") from exc


_EXACT_TYPES = {bool: "a bool", int: "an int", float: "a float", list: "a list", dict: "a dict"}


def check_deploy_time_value(param: Parameter, value: Any) -> Any:
    """A default function's result must have the parameter's type, as Metaflow checks.

    For bool/int/float the exact type; for every other type (str, JSONType, a custom one) a string,
    which is then converted like a command-line value.
    """
    if value is None:
        return None
    wanted = _EXACT_TYPES.get(param.type)
    if wanted is not None:
        if type(value) is not param.type:
            raise ParameterError(
                f"The default function of parameter {param.name!r} returned {value!r} "
                f"({type(value).__name__}); the parameter's type needs {wanted}."
            )
        return value
    if not isinstance(value, str):
        raise ParameterError(
            f"The default function of parameter {param.name!r} returned a {type(value).__name__}; for a "
            f"parameter of type {param.type_name} it must return a string (e.g. json.dumps(...) for JSONType)."
        )
    return param.convert(value, "the value its default function returned")


def call_default(default: Callable, context: ParameterContext, param: Parameter) -> Any:
    import inspect  # only here: it costs ~15 ms to import, and tasks never need it

    try:
        takes_context = bool(inspect.signature(default).parameters)
    except (TypeError, ValueError):
        takes_context = False
    try:
        return default(context) if takes_context else default()
    except Exception as exc:
        raise ParameterError(
            f"The default of parameter {param.name!r} is a function, and calling it failed: "
            f"{type(exc).__name__}: {exc}."
        ) from exc


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def flow_parameters(flow_cls: type) -> List[Tuple[str, Parameter]]:
    """``(attribute, Parameter)`` of a flow class and its bases, in declaration order."""
    seen: Dict[str, Parameter] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Parameter):
                seen[attr] = value
            elif attr in seen:
                del seen[attr]  # a subclass hid the parameter
    return list(seen.items())


def check_declarations(flow_cls: type, graph: Any = None) -> None:
    """Raise ParameterError for the first badly declared parameter."""
    names: Dict[str, str] = {}
    steps = set(graph.nodes) if graph is not None else set()
    for attr, param in flow_parameters(flow_cls):
        where = f"{flow_cls.__name__}.{attr} = {type(param).__name__}({param.name!r}, ...)"
        if param.errors:
            raise ParameterError(f"{where}: {param.errors[0]}.")
        if attr.startswith("_"):
            raise ParameterError(
                f"{where}: a parameter's attribute cannot start with '_' (it would not be an artifact)."
            )
        if attr in steps:
            raise ParameterError(f"{where}: the attribute {attr!r} is also a step name.")
        key = param.name.lower().replace("_", "-")
        if key in names:
            raise ParameterError(f"{where}: the name {param.name!r} is already used by parameter {names[key]!r}.")
        names[key] = attr


def resolve_all(
    flow_cls: type, cli_values: Mapping[str, Optional[str]], user: str, environ: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    """Every parameter's value for a new run, by attribute name (what steps read)."""
    env = os.environ if environ is None else environ
    values = {}
    for attr, param in flow_parameters(flow_cls):
        context = ParameterContext(flow_cls.__name__, user, param.name)
        values[attr] = param.resolve(cli_values.get(param.name), env, context)
    return values


# IncludeFile lives in its own module; it is re-exported here, where flows and the CLI have always found it.
from cafstore.runner.authoring.include_file import IncludeFile  # noqa: E402

__all__ = ["IncludeFile", "JSONType", "Parameter", "ParameterContext", "check_declarations", "flow_parameters"]
