"""A value that counts how often it is unpickled (to test lazy, cached artifact loading)."""

LOADS = []


class Probe:
    def __init__(self, label: str) -> None:
        self.label = label

    def __setstate__(self, state: dict) -> None:
        LOADS.append(state["label"])
        self.__dict__.update(state)
