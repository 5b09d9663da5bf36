"""The package's version, in a module of its own so that any layer may read it (the report and the
manifest name it) without importing the package root, which reaches up to the API."""

__version__ = "0.1.0"
