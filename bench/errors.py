"""The one error the benchmark reports as a failed run (setup, server or sign-in trouble)."""


class BenchError(RuntimeError):
    """The benchmark could not run; the message says why."""
