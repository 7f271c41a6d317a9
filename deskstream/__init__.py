"""deskstream's shared package: the event envelope and contract, settings helpers,
Kafka wiring, the local Apache Kafka, and what every service exposes (health,
metrics, JSON logs). Services import from here and never from each other."""
