"""Commands that run flows: run, resume."""

COMMANDS: list = []
