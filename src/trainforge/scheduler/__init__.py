"""Who runs which job, when: leases and heartbeats, capacity and admission, taking over the
jobs of workers that died, and turning the runtime's phases into status transitions."""
