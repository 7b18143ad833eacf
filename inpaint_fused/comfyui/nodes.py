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


# --- The rest of the inpainting chain (ComfyUI v0.3.64 nodes_mask.py / nodes.py) ------------------------------


MAX_RESOLUTION = 16384  # nodes.MAX_RESOLUTION, the stock inputs' range
SAME = "Same result as the stock node, bit for bit (inpaint-fused: one Triton pass where the inputs are on a GPU). "


def _ramp(name: str) -> io.Int.Input:
    return io.Int.Input(name, default=0, min=0, max=MAX_RESOLUTION, step=1)


class FeatherMaskFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FeatherMaskFused",
            display_name="FeatherMask (fused)",
            category="mask",
            description=SAME + 'Replaces "FeatherMask".',
            inputs=[io.Mask.Input("mask"), _ramp("left"), _ramp("top"), _ramp("right"), _ramp("bottom")],
            outputs=[io.Mask.Output()],
        )

    @classmethod
    def execute(cls, mask, left, top, right, bottom) -> io.NodeOutput:
        return io.NodeOutput(masks.feather(mask, left, top, right, bottom))


class ThresholdMaskFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ThresholdMaskFused",
            display_name="ThresholdMask (fused)",
            category="mask",
            description=SAME + 'Replaces "ThresholdMask".',
            inputs=[io.Mask.Input("mask"), io.Float.Input("value", default=0.5, min=0.0, max=1.0, step=0.01)],
            outputs=[io.Mask.Output()],
        )

    @classmethod
    def execute(cls, mask, value) -> io.NodeOutput:
        return io.NodeOutput(masks.threshold(mask, value))


class ImageCompositeMaskedFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ImageCompositeMaskedFused",
            display_name="ImageCompositeMasked (fused)",
            category="image",
            description=SAME + 'Replaces "ImageCompositeMasked".',
            inputs=[
                io.Image.Input("destination"),
                io.Image.Input("source"),
                io.Int.Input("x", default=0, min=0, max=MAX_RESOLUTION, step=1),
                io.Int.Input("y", default=0, min=0, max=MAX_RESOLUTION, step=1),
                io.Boolean.Input("resize_source", default=False),
                io.Mask.Input("mask", optional=True),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, destination, source, x, y, resize_source, mask=None) -> io.NodeOutput:
        return io.NodeOutput(masks.composite(destination, source, x, y, resize_source, mask))


class InpaintModelConditioningFused(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InpaintModelConditioningFused",
            display_name="InpaintModelConditioning (fused)",
            category="conditioning/inpaint",
            description=SAME
            + 'Replaces "InpaintModelConditioning": the pixels go to the VAE\'s device once and are gray-filled there.',
            inputs=[
                io.Conditioning.Input("positive"),
                io.Conditioning.Input("negative"),
                io.Vae.Input("vae"),
                io.Image.Input("pixels"),
                io.Mask.Input("mask"),
                io.Boolean.Input(
                    "noise_mask",
                    default=True,
                    tooltip="Add a noise mask to the latent so sampling will only happen within the mask. Might "
                    "improve results or completely break things depending on the model.",
                ),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent"),
            ],
        )

    @classmethod
    def execute(cls, positive, negative, vae, pixels, mask, noise_mask=True) -> io.NodeOutput:
        return io.NodeOutput(*masks.inpaint_model_conditioning(positive, negative, pixels, vae, mask, noise_mask))


NODES += [FeatherMaskFused, ThresholdMaskFused, ImageCompositeMaskedFused, InpaintModelConditioningFused]
