"""The one exception type a stage turns into a one-line error and a non-zero exit."""


class PipelineError(Exception):
    """Bad input or configuration, with a message that names what to fix."""
