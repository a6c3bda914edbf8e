"""Sign-in: the authorization code flow with PKCE, the callback, admin consent, and the
emails and error pages they end in. Sits above connections, below the capabilities."""
