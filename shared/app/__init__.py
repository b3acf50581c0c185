"""The composition root (runtime) and the command line: the only layer that wires every domain."""
