"""Models of the cluster's controllers, for provision mode: kubelet + NMI, ingress-nginx, external-dns, cert-manager.

They run in the sandbox's server process, read and write the fake kube API's and fake ARM's stores
through the stores' public methods, and act only on objects created through the API (what a scenario
loads is a cluster at rest, so attach scenarios stay exactly as written). Their behaviour follows from
the stores' state wherever the real controller's would (selectors, bindings, role assignments, the
issuer's solver, external-dns' flags); knobs exist only for what state cannot express (a leaky NMI).
"""
