"""Output: ECS records and the sinks that write them."""
