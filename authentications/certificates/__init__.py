"""Certificate credentials: generation, upload (PFX or PEM), rollover to the next
certificate, and expiry reminders."""
