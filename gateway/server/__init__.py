"""The edge: path to endpoint, head limits, disconnect watch."""
