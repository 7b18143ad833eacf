"""ComfyUI node pack of inpaint-fused.

``latents`` converts at the node boundary (IMAGE/MASK/VAE in, LATENT dict out) and calls the package;
it imports nothing from ComfyUI at module level, so it runs (and is tested) without ComfyUI.
``nodes`` holds the V3 node classes and ``comfy_entrypoint``; it imports ``comfy_api`` and therefore
only loads inside ComfyUI.
``vae`` is ComfyUI's ``VAE`` as :mod:`inpaint_fused.vae` sees it (duck-typed, no ComfyUI import either).
"""
