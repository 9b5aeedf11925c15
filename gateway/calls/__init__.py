"""Per-call stages: validate -> authorize -> forward -> shape."""
