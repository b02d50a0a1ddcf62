"""The invoicing service: an async gRPC system of record for invoices."""
