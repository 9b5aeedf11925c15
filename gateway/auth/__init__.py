"""Authorization on both sides: callers' tokens inbound (resource server), the gateway's own credentials outbound."""
