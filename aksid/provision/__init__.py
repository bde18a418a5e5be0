"""Provision mode: create labelled probes and a canary, observe what the cluster's controllers do, remove it all.

Runs once per run in the xdist controller, after the read-only collection; what it sees becomes the
snapshot's `provision` section, so the checks stay pure readers of the snapshot.
"""
