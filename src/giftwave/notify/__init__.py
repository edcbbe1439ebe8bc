"""Never miss it: followers' opt-ins to a creator's notices, the inbox, and Web Push."""
