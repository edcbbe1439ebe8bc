"""Sharing: short links to streams and profiles, their visits, and who they brought in.

``links`` makes and finds the links, ``visitors`` hashes visitors and signs the link cookie,
``attribution`` credits sharers and counts their reach, ``service`` holds them together for the
app (caches, the rate limit, the gift observer). See docs/sharing.md.
"""
