"""Tool discovery: a search index over the tools, for the `search_tools` meta-tool."""
