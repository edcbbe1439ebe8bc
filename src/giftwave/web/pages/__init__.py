"""The server-rendered pages, one router per area: the site (home, log-in, the live room, the
embed, the overlay, the shop), a user's profile, the studio, clips, the economy's pages, the
admin console, a sharer's reach. HTML for people and for OBS, never JSON; their templates and
static files are ``web/templates`` and ``web/static``. The JSON API is ``giftwave.api``.
"""
