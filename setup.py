from setuptools import find_packages, setup

setup(
    # kernels/ is installed as inpaint_fused._kernels, never as a top-level `kernels` (Hugging Face owns that name).
    packages=[*find_packages(include=["inpaint_fused", "inpaint_fused.*"]), "inpaint_fused._kernels"],
    package_dir={"inpaint_fused._kernels": "kernels"},
    package_data={"inpaint_fused": ["data/*.png", "data/*.json"]},
)
