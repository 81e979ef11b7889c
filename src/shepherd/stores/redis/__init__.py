"""Redis: capacity slots, leases, cursors and coordination. Every key comes from ``keys``."""
