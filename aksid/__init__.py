"""aksid: conformance checks for AKS environments that give pods Azure identities.

PYTEST_DONT_REWRITE: `aksid run` imports this package before pytest loads the plugin's entry point;
the marker tells pytest there is nothing here to rewrite (its own checks are rewritten as test files).
"""

__version__ = "0.1.0"
