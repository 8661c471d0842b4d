"""Test support shared by several test directories and the benchmarks (``tests.support.<module>``)."""
