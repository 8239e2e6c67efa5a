"""Images worker: diffusers text-to-image in the sdxl-style dialect (see handlers/README.md)."""
