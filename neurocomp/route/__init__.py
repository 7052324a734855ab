"""Route: dimension-order (X, then Y) paths and link loads of a placement (xy.py), and routing table sizes (tables.py)."""
from neurocomp.route.tables import routing_tables, table_report
from neurocomp.route.xy import Routes, edge_hops, grid_hops, route, verify_routes

__all__ = ["Routes", "edge_hops", "grid_hops", "route", "routing_tables", "table_report", "verify_routes"]
