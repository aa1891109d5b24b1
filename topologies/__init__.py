"""The Faust stream topology: thin glue between Kafka and the pure core."""
