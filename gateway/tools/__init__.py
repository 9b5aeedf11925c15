"""Start-up stage 3: API model + mapping -> `ToolSpec`s, everything a call needs, computed once."""
