"""Rendering client objects: text for the commands (text.py) and HTML for notebooks (html.py).

Views read the model (flows.py, tasks.py, artifacts.py) through its public
API; the model never imports them. Importing this package registers the
HTML views, which ``Run._repr_html_`` and ``Task._repr_html_`` look up;
cafstore.client imports it, so they are in place before any object exists.
"""

from cafstore.client.views import html

html.register()
