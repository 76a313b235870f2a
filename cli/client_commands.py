"""Commands that read past runs: logs, log, dump, tag, namespace, ls."""

COMMANDS: list = []
