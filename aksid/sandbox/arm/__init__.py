"""The fake Azure Resource Manager, one module per job; aksid.sandbox.armapi is its public face.

    ids        resource ids and request paths as keys; what a path names (a collection, a record-set list)
    responses  ArmResponse, and ArmError with ARM's error body
    request    ArmRequest: a request's path, segments and query as ARM reads them
    faults     failures a scenario or the fault file injects (Fault)
    index      one immutable generation of stored resources, looked up by id
    store      ArmStore, the thread-safe store (and its interface for controller models)
    authn      bearer tokens: the sandbox's own, restricted principals', ARM's 401 challenge
    authz      Azure RBAC of a restricted principal: its role definitions' actions against the route's operation
    filters    the OData $filter expressions of role assignments and role definitions
    paging     `value` pages and the absolute `nextLink`
    roles      Microsoft.Authorization: role definitions (tenant-global) and role assignments (scope semantics)
    routing    GET of a resource, an implied resource group or a collection; ARM's 404s
    pipeline   `answer`: authentication, authorization, api-version, faults, then routing
    handler    the HTTP handler; make_arm_handler
"""
