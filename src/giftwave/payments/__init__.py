"""Payment providers behind one interface: the built-in sandbox and Stripe."""
