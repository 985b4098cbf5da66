"""tablekeeper: DynamoDB-style tables with backups and point-in-time recovery."""
