"""The ``cafstore`` command line (installs as ``cafstore.cli``): thin click commands over the other layers."""
