"""Azure RBAC for the fake ARM's restricted principals (their role definitions against each route's operation).

This module is a public face kept for its importers; the code lives in aksid.sandbox.arm.authz, beside the rest
of the fake ARM.
"""

from aksid.sandbox.arm.authz import ArmPrincipal, RoleDefinition, load_roles, operation

__all__ = ["ArmPrincipal", "RoleDefinition", "load_roles", "operation"]
