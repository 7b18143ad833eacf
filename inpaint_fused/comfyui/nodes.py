"""V3 node classes (``comfy_api``) and ``comfy_entrypoint``; loads only inside ComfyUI.

Node IDs, input names, defaults and ranges are those of the nodes they replace; ``execute`` hands
the inputs to :mod:`inpaint_fused.comfyui.latents` and returns its LATENT.
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import latents, masks

GROW_MASK_BY = io.Int.Input("grow_mask_by", default=6, min=0, max=64, step=1)
PER_BATCH = io.Int.Input("per_batch", default=16, min=1, step=1)
FUSED = "Preprocessing fused into one GPU pass on the VAE's device (inpaint-fused); same latent as "


class VAEEncodeForInpaintFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VAEEncodeForInpaintFused",
            display_name="VAE Encode (for Inpainting, fused)",
            category="latent/inpaint",
            description=FUSED + '"VAE Encode (for Inpainting)".',
            inputs=[io.Image.Input("pixels"), io.Vae.Input("vae"), io.Mask.Input("mask"), GROW_MASK_BY],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, pixels, vae, mask, grow_mask_by) -> io.NodeOutput:
        return io.NodeOutput(latents.encode_for_inpaint(vae, pixels, mask, grow_mask_by))


class VAEEncodeForInpaintWASFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VAEEncodeForInpaintWASFused",
            display_name="Inpainting VAE Encode (WAS, fused)",
            category="latent/inpaint",
            description=FUSED + '"Inpainting VAE Encode (WAS)".',
            inputs=[
                io.Image.Input("pixels"),
                io.Vae.Input("vae"),
                io.Mask.Input("mask"),
                io.Int.Input("mask_offset", default=6, min=-128, max=128, step=1),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, pixels, vae, mask, mask_offset) -> io.NodeOutput:
        return io.NodeOutput(latents.encode_for_inpaint_was(vae, pixels, mask, mask_offset))


class VAEEncodeFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VAEEncodeFused",
            display_name="VAE Encode (fused)",
            category="latent",
            description=FUSED + '"VAE Encode".',
            inputs=[io.Image.Input("pixels"), io.Vae.Input("vae")],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, pixels, vae) -> io.NodeOutput:
        return io.NodeOutput(latents.encode(vae, pixels))


class VAEEncodeBatchedFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VAEEncodeBatchedFused",
            display_name="VAE Encode Batched (fused)",
            category="latent/batched",
            description=FUSED
            + '"VAE Encode Batched" (VideoHelperSuite): slices of per_batch frames, the next one uploading '
            "while the current one encodes, halved on out-of-memory.",
            inputs=[io.Image.Input("pixels"), io.Vae.Input("vae"), PER_BATCH],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, pixels, vae, per_batch) -> io.NodeOutput:
        return io.NodeOutput(latents.encode_batched(vae, pixels, per_batch))


class VAEEncodeForInpaintBatchedFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VAEEncodeForInpaintBatchedFused",
            display_name="VAE Encode (for Inpainting) Batched (fused)",
            category="latent/inpaint",
            description=FUSED
            + '"VAE Encode (for Inpainting)" on every frame of a video, encoded in slices of per_batch frames.',
            inputs=[io.Image.Input("pixels"), io.Vae.Input("vae"), io.Mask.Input("mask"), GROW_MASK_BY, PER_BATCH],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, pixels, vae, mask, grow_mask_by, per_batch) -> io.NodeOutput:
        return io.NodeOutput(latents.encode_for_inpaint_batched(vae, pixels, mask, grow_mask_by, per_batch))


class GrowMaskFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GrowMaskFused",
            display_name="Grow Mask (fused)",
            category="mask",
            description='Same MASK as "GrowMask", computed on the GPU at a cost that does not depend on expand '
            "(inpaint-fused).",
            inputs=[
                io.Mask.Input("mask"),
                io.Int.Input("expand", default=0, min=-16384, max=16384, step=1),
                io.Boolean.Input("tapered_corners", default=True),
            ],
            outputs=[io.Mask.Output()],
        )

    @classmethod
    def execute(cls, mask, expand, tapered_corners) -> io.NodeOutput:
        return io.NodeOutput(masks.grow_mask(mask, expand, tapered_corners))


NODES = [
    VAEEncodeForInpaintFused,
    VAEEncodeForInpaintWASFused,
    VAEEncodeFused,
    VAEEncodeBatchedFused,
    VAEEncodeForInpaintBatchedFused,
    GrowMaskFused,
]


class InpaintFusedExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> InpaintFusedExtension:
    return InpaintFusedExtension()
