"""The small shared kernel of the govsync services: settings pieces, Kafka, dead letters, HTTP, logs."""
