"""Users, sessions, API keys, roles and the age rule."""
