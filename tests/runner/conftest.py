"""Let the runner tests import ``cafstore.runner`` from an uninstalled checkout.

pyproject.toml maps the package ``cafstore.runner`` to the top-level
``runner/`` directory; that mapping only exists once the project is
installed.  When it is not, register the directory under its package name
so the tests exercise the working tree rather than skip.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    import cafstore.runner  # noqa: F401  (installed, or editable)
except ImportError:
    import cafstore

    _spec = importlib.util.spec_from_file_location(
        "cafstore.runner",
        ROOT / "runner" / "__init__.py",
        submodule_search_locations=[str(ROOT / "runner")],
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["cafstore.runner"] = _module
    _spec.loader.exec_module(_module)
    cafstore.runner = _module
