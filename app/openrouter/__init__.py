"""OpenRouter's dialect: its layout under /api/v1 and the routes only it has (models' endpoints, account)."""
