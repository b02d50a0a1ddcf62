"""Background work: the modules' tasks, claimed item by item with leases."""
