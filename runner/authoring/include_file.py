"""``IncludeFile``: a parameter whose value is the content of a file, read when the run starts."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from cafstore.exception import ParameterError
from cafstore.runner.authoring.parameters import Parameter, ParameterContext, call_default


class IncludeFile(Parameter):
    """``IncludeFile(name, is_text=True, encoding='utf-8', required=False, default=None, help=None)``.

    The option names a file; the file is read when the run starts and its
    content (str, or bytes with ``is_text=False``) becomes the artifact, so
    the run keeps it after the file changes or disappears.
    """

    IS_INCLUDE_FILE = True

    def __init__(
        self,
        name: str,
        required: bool = False,
        is_text: bool = True,
        encoding: str = "utf-8",
        help: Optional[str] = None,
        default: Any = None,
        **unknown: Any,
    ) -> None:
        super().__init__(name, help=help, default=default, type=str, required=required, **unknown)
        self.is_text = is_text
        self.encoding = encoding

    @property
    def type_name(self) -> str:
        return "file"

    def convert(self, text: str, source: str) -> Any:
        path = os.path.expanduser(text)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ParameterError(
                f"Cannot read the file {text!r} given for {self.option} ({source}): "
                f"{exc.strerror or exc}. Check the path (relative paths are relative to {os.getcwd()})."
            ) from exc
        if not self.is_text:
            return data
        try:
            return data.decode(self.encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParameterError(
                f"The file {text!r} given for {self.option} is not valid {self.encoding} text ({exc}). "
                f"Pass encoding= to IncludeFile, or is_text=False to read it as bytes."
            ) from exc

    def resolve(self, cli_value: Optional[str], environ: Mapping[str, str], context: ParameterContext) -> Any:
        if cli_value is None and self.env_value(environ)[1] is None:
            default = self.default
            if callable(default):
                default = call_default(default, context, self)
            if default is None:
                if self.required:
                    raise ParameterError(
                        f"Missing required file {self.option}: pass {self.option} PATH (or set {self.env_var})."
                    )
                return None
            return self.convert(str(default), "default value")
        return super().resolve(cli_value, environ, context)
