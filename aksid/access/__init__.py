"""Who can act as an identity: the access graph (issue #26).

- aksid/access/rbac.py: Kubernetes RBAC evaluated as the API server does, the kube side of the graph (ACCESS-001);
- aksid/access/azure.py: Azure role assignments and definitions, the Azure side of the graph (ACCESS-002);
- aksid/access/who_can.py: `aksid who-can`, every principal with its shortest path and each edge's evidence.
"""
