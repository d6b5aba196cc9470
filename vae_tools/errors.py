"""The one exception type a user's mistake turns into: the CLI prints it as a single line."""


class VaeToolsError(Exception):
    """A problem with the user's input, files or options, phrased for the user."""


class DataError(VaeToolsError, ValueError):
    """A data source that cannot be read or does not hold usable images (a ValueError too, as
    scikit-learn raises for bad input)."""


class RunFolderError(VaeToolsError):
    """A run folder that is missing, incomplete or from an incompatible version."""


class ConfigError(VaeToolsError):
    """An unknown or invalid configuration value."""
