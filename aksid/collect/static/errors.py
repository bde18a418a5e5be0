"""The one error static inputs raise: a file aksid cannot read, named with its line when there is one."""


class StaticInputError(ValueError):
    """A malformed or unsupported input file; the message is one sentence naming the file (and line)."""
