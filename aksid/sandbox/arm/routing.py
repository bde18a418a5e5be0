"""Where a read goes: a stored resource by id, a resource group implied by its members, a collection (the children
of a path, a subscription-wide list, a DNS zone's record sets), or Microsoft.Authorization's routes (see roles);
otherwise the 404 ARM gives for the outermost thing missing, with its own code and wording."""

from __future__ import annotations

from aksid.sandbox.arm.ids import DNS_ZONE_TYPES, Key, id_key, is_collection, is_record_set_list, last_providers
from aksid.sandbox.arm.index import Index, Stored
from aksid.sandbox.arm.paging import paged
from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError, ArmResponse
from aksid.sandbox.arm.roles import ROLE_DEFINITIONS, authorization_route, role_assignments, role_definitions

_NOT_FOUND_HELP = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


def route(index: Index, request: ArmRequest, page_size: int) -> ArmResponse:
    authorization = authorization_route(request.key)
    if authorization is not None:
        providers, kind = authorization
        if kind == ROLE_DEFINITIONS:
            return role_definitions(index, request, providers, page_size)
        return role_assignments(index, request, providers, page_size)
    return _resource_or_collection(index, request, page_size)


def _resource_or_collection(index: Index, request: ArmRequest, page_size: int) -> ArmResponse:
    key = request.key
    if key in index.by_key:
        return ArmResponse(200, index.by_key[key].raw)
    _require_containers(index, request)
    if len(key) == 4 and key[0] == "subscriptions" and key[2] == "resourcegroups":
        return ArmResponse(200, index.groups[(key[1], key[3])])  # implied by its members
    if is_collection(key):
        return paged(request, [item.raw for item in _collection(index, key)], page_size)
    raise _resource_not_found(request)


def _require_containers(index: Index, request: ArmRequest) -> None:
    """404 for the outermost missing container, with the code ARM uses for it."""
    key, segments = request.key, request.segments
    if len(key) >= 2 and key[0] == "subscriptions":
        if key[1] not in index.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{segments[1]}' could not be found.")
        if len(key) >= 4 and key[2] == "resourcegroups" and (key[1], key[3]) not in index.groups:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{segments[3]}' could not be found.")
    providers = last_providers(key)
    # A nested type (dnsZones/<zone>/A, .../all) needs its top-level parent to exist first.
    if providers is not None and len(key) - providers - 2 >= 3 and key[: providers + 4] not in index.by_key:
        raise ArmError(
            404, "ParentResourceNotFound",
            f"Can not perform requested operation on nested resource. Parent resource '{segments[providers + 3]}' not found.",
        )


def _resource_not_found(request: ArmRequest) -> ArmError:
    key, segments = request.key, request.segments
    providers = last_providers(key)
    if providers is not None and len(key) - providers == 6 and key[providers + 2] in DNS_ZONE_TYPES:
        # A record set: Azure DNS answers with its own code and wording, not ARM's.
        return ArmError(
            404, "NotFound",
            f"The resource record '{segments[-1]}' does not exist in resource group '{segments[3]}' "
            f"of subscription '{segments[1]}'.",
        )
    resource = "/".join(segments[providers + 1:]) if providers is not None else "/".join(segments)
    where = f" under resource group '{segments[3]}'" if len(key) >= 4 and key[2] == "resourcegroups" else ""
    return ArmError(404, "ResourceNotFound", f"The Resource '{resource}'{where} was not found. {_NOT_FOUND_HELP}")


def _collection(index: Index, key: Key) -> list[Stored]:
    if is_record_set_list(key):  # every record set of the zone, whatever its type
        zone = key[:-1]
        return [item for item in index.items if len(item.key) == len(zone) + 2 and item.key[: len(zone)] == zone]
    if len(key) == 3 and key[0] == "subscriptions" and key[2] == "resourcegroups":
        return _resource_groups(index, key[1])
    if len(key) == 5 and key[0] == "subscriptions" and key[2] == "providers":  # list_by_subscription
        resource_type = f"{key[3]}/{key[4]}"
        return [item for item in index.items if item.key[:2] == key[:2] and item.type == resource_type]
    return [item for item in index.items if item.key[:-1] == key]


def _resource_groups(index: Index, subscription: str) -> list[Stored]:
    """Stored resource groups, then those only implied by the resources inside them."""
    listed = {(key[1], key[3]): item for key, item in index.by_key.items() if len(key) == 4 and key[2] == "resourcegroups"}
    for (sub, group), implied in index.groups.items():
        if (sub, group) not in listed:
            key = id_key(implied["id"])
            listed[(sub, group)] = Stored(key, implied["type"].lower(), implied)
    return [item for (sub, _group), item in listed.items() if sub == subscription]
