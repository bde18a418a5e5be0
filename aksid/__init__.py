"""aksid: conformance checks for AKS environments that give pods Azure identities."""

__version__ = "0.1.0"
