"""The fake Kubernetes API server, one module per job; aksid.sandbox.kubeapi is its public face.

    resources    what is served: Resource, the built-in resources, CRD resources, Catalog
    errors       `Status` documents and ApiError
    faults       failures a scenario injects (Fault)
    objects      objects as stored: defaults filled in (prepare_object), object_key, copies per version
    store        KubeStore, the thread-safe object store (and its interface for controller models)
    discovery    legacy and aggregated discovery, root paths, skeleton OpenAPI (v3, and v2 without definitions)
    tables       server-side Table printing (kubectl's columns)
    jsonpath     the JSONPath subset of CRD printer columns and selectable fields
    selectors    label and field selectors
    negotiation  content negotiation (Accept)
    pagination   limit and continue
    validation   a POSTed object, or one written over a stored one (PUT, PATCH), checked as the API server does
    patch        the PATCH formats: JSON merge patch, JSON patch, strategic merge, server-side apply (simplified)
    handler      the HTTP handler: routing, verbs, request bodies; make_kube_handler
"""
