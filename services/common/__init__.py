"""The shared kernel of the services: settings, Kafka, dead letters, HTTP, logs."""
