"""The browsable docs page: Swagger UI with local assets only."""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path

# ---- docs page -------------------------------------------------------------------------------


def static_dir() -> Path:
    """Swagger UI 5 assets shipped by swagger-ui-py (located without importing the package)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(spec.origin).parent / "static"


def docs_html(openapi_url: str = "/openapi.json", static_prefix: str = "/docs/static") -> str:
    """A Swagger UI page for `openapi_url` whose assets all come from `static_prefix`."""
    prefix = html.escape(static_prefix.rstrip("/"), quote=True)
    config = {"url": openapi_url, "dom_id": "#swagger-ui", "deepLinking": True}
    config |= {"validatorUrl": None, "persistAuthorization": True}
    config_js = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>API documentation</title>
  <link rel="stylesheet" href="{prefix}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{prefix}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{prefix}/swagger-ui-bundle.js"></script>
  <script src="{prefix}/swagger-ui-standalone-preset.js"></script>
  <script>
    const config = {config_js};
    config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];
    config.layout = "StandaloneLayout";
    window.ui = SwaggerUIBundle(config);
  </script>
</body>
</html>
"""
