"""Vendor calls as data: one module per protocol, and the registry binding configured providers to them."""
