"""Realtime job events over the Pusher Channels protocol: the built-in server at ``/app/{key}``,
``POST /broadcasting/auth``, and publishing through an external Pusher/soketi server."""
