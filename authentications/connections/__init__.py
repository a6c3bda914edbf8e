"""Connections: the Authentication model and its events, MSAL (oauth), credentials, tokens
and their refresh policies, consent state and the cron that keeps tokens fresh.

The token core every other capability stands on; it imports none of them (.importlinter).
"""
