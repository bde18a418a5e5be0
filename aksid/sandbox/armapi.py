"""A read-only fake Azure Resource Manager that the real azure-mgmt-* clients accept.

Resources are ARM JSON documents (`id`, `name`, `type`, usually `properties`) exactly as ARM
returns them; everything the server answers is derived from their ids:

* GET by id (paths are matched case-insensitively, responses keep the stored casing);
* collections: a URL lists the resources whose id minus its last segment equals it, plus the
  subscription-wide form `/subscriptions/<s>/providers/<ns>/<type>` and the DNS `/all` and
  `/recordsets` record-set lists;
* Microsoft.Authorization: role assignments with ARM's scope semantics (`principalId eq`,
  `assignedTo()`, `atScope()`), role definitions that are global (found by GUID from any scope);
* paging with an absolute `nextLink` back to this server, at `page_size` items a page;
* ARM's error bodies and status codes; writes are refused with 405;
* fault injection: a fault whose regex matches the request makes it fail with a chosen status.

This module is the public face; the code lives in aksid.sandbox.arm, one module per job.
"""

from aksid.sandbox.arm.authn import Restricted
from aksid.sandbox.arm.faults import Fault
from aksid.sandbox.arm.handler import ArmRequestHandler, make_arm_handler
from aksid.sandbox.arm.ids import Key, id_key
from aksid.sandbox.arm.pipeline import answer
from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError, ArmResponse
from aksid.sandbox.arm.store import DEFAULT_PAGE_SIZE, ArmStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ArmError",
    "ArmRequest",
    "ArmRequestHandler",
    "ArmResponse",
    "ArmStore",
    "Fault",
    "Key",
    "Restricted",
    "answer",
    "id_key",
    "make_arm_handler",
]
