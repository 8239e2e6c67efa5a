"""OpenRouter's dialect: the routes its SDK calls that have no OpenAI twin, and their shapes."""
