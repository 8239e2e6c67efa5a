"""routing.yaml: schema, loading with environment interpolation, and (surface, model) resolution."""

from app.routing.loader import RoutingError, load_routing, parse_routing
from app.routing.resolver import Route, resolve
from app.routing.schema import SURFACES, RoutingConfig, Surface

__all__ = ["SURFACES", "Route", "RoutingConfig", "RoutingError", "Surface", "load_routing", "parse_routing", "resolve"]
