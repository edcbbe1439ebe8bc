"""Who follows whom, and what it tells a viewer (docs/sharing.md, "Social proof")."""
