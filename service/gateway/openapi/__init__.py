"""OpenAPI for the REST gateway: component schemas (`schemas`), the document of the
bindings (`document`), proto comments (`comments`) and the docs page (`docs`)."""

from service.gateway.openapi.comments import load_comments
from service.gateway.openapi.docs import docs_html, static_dir
from service.gateway.openapi.document import build_openapi, expand_template

__all__ = ["build_openapi", "docs_html", "expand_template", "load_comments", "static_dir"]
