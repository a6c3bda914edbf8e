"""BC change notifications: subscriptions, the public endpoint BC posts to, the durable
inbox, the handler registry, delivery tasks and the cron that renews and sweeps."""
