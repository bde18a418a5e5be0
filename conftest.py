"""Loads the aksid plugin when pytest runs from a clone; it acts only on runs that include suites/."""

pytest_plugins = ["aksid.plugin"]
