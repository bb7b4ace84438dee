"""The lab: real services started on this machine, and villages built from network namespaces."""
