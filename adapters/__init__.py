"""Ready-made example adapters: an OpenAPI document, a mapping and, for the demo, a real backend."""
