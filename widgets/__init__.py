"""Built-in widgets (HTML templates and their shared runtime), shipped as package data."""
