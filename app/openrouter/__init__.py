"""OpenRouter's dialect: its layout under /api/v1 (the OpenAI routes mirrored) and the routes its SDK
calls that have no OpenAI twin (models' endpoints, account, media), with their shapes."""
