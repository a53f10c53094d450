"""The results-table schema and every figure drawn from it."""
