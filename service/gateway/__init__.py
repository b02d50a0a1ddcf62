"""A generic REST gateway: routes and OpenAPI come from the `google.api.http` rules in
the compiled descriptors; calls are forwarded over a gRPC channel. It knows no resource."""
